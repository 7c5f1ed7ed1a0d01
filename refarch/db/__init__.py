"""The database: the local PostgreSQL server, connections, schema migrations, bulk loading.

* :mod:`refarch.db.server` -- :class:`~refarch.db.server.LocalPostgres`, the server refarch
  starts under ``REFARCH_HOME`` (unix socket; as root it runs as an unprivileged user).
* :mod:`refarch.db.connect` -- ``connect(url)`` with a clear error, ``redact_url``; which
  database the settings mean is :func:`refarch.bootstrap.database_url`.
* :mod:`refarch.db.products` -- every SQL statement over ``products``, the outbox and
  ``reconcile_runs``.
* :mod:`refarch.db.migrations` -- numbered SQL files in ``refarch/db/sql/`` applied once each.
* :mod:`refarch.db.load` -- ``load_products(conn, products)``: COPY, upsert by SKU.

Helpers: :mod:`~refarch.db.binaries` (find initdb/pg_ctl/postgres),
:mod:`~refarch.db.privileges` (which OS user runs the server),
:mod:`~refarch.db.processes` (pids, zombies, lock files),
:mod:`~refarch.db.copy_rows` (a Product as a checked COPY row),
:mod:`~refarch.db.merge` (the staging-table merge of a load).
"""
