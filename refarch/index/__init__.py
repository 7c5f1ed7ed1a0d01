"""The vector index: Pinecone in the cloud, or a local Pinecone-compatible server.

* :mod:`refarch.index.port` — the small :class:`~refarch.index.port.VectorIndex` protocol the
  pipeline uses, with its Pinecone-SDK adapter (works against both backends);
* :mod:`refarch.index.client` — the one wiring function from settings to a Pinecone client;
* :mod:`refarch.index.process` — start and stop the local server as a subprocess;
* :mod:`refarch.index.filters` — Pinecone metadata filters: parsing and semantics;
* :mod:`refarch.index.server` — the local server itself.
"""
