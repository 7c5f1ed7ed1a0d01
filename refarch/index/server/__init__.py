"""The local, Pinecone-compatible vector index server.

* :mod:`~refarch.index.server.app` — the HTTP API (Pinecone's REST paths and error shapes);
* :mod:`~refarch.index.server.registry` — the indexes of a data directory, background work;
* :mod:`~refarch.index.server.engine` — one index: write path, read path, snapshots;
* :mod:`~refarch.index.server.records` — durable records in SQLite (the source of truth);
* :mod:`~refarch.index.server.ann` — a namespace in memory: hnswlib graph + exact search;
* :mod:`~refarch.index.server.columns` — metadata columns for fast filters;
* :mod:`~refarch.index.server.main` — ``python -m refarch.index.server``.

Start and stop it from Python with :func:`refarch.index.process.start_index_server`.
"""
