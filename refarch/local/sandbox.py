"""A throwaway local pipeline for notebooks and benchmarks: Postgres and an index server in a
temporary directory, on free ports, with settings that point every part at them.

``refarch up`` is the way to run the stack; a sandbox is for code that wants to drive the parts
itself (call the relay's step, an indexer's step, kill a process) and leave nothing behind::

    with start_sandbox() as box:
        load_products(...)
        with box.connect("relay") as conn:
            drain(conn, box.queue("relay"), 500)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from refarch.settings import Settings

if TYPE_CHECKING:
    from refarch.bootstrap import Role
    from refarch.db.server import LocalPostgres
    from refarch.index.port import VectorIndex
    from refarch.index.process import IndexServerHandle
    from refarch.pipeline.indexer import IndexerWorker
    from refarch.queue.port import Queue


@dataclass
class Sandbox:
    """Running Postgres (migrated) and index server, and the settings that reach them."""

    home: Path
    settings: Settings
    postgres: LocalPostgres
    index_server: IndexServerHandle | None
    _queues: list[Queue] = field(default_factory=list)
    _relay_queue: Queue | None = None

    @property
    def url(self) -> str:
        """The owner's database URL."""
        assert self.settings.database_url is not None
        return self.settings.database_url

    def role_url(self, role: Role | Literal["owner"]) -> str:
        """The URL of a service role (``app``, ``relay``, ``indexer``) or ``owner``."""
        from refarch.bootstrap import role_url

        if role == "owner":
            return self.url
        return role_url(self.settings, role)

    def connect(self, role: Role | Literal["owner"] = "owner") -> psycopg.Connection[Any]:
        """An autocommit connection as ``role``."""
        return psycopg.connect(self.role_url(role), autocommit=True)

    def queue(self, role: Role | Literal["owner"] = "owner") -> Queue:
        """The local queue as ``role`` sees it (closed with the sandbox)."""
        from refarch.bootstrap import make_queue

        queue: Queue = make_queue(self.settings, self.role_url(role))
        self._queues.append(queue)
        return queue

    def index(self) -> VectorIndex:
        """The sandbox's vector index (created on first use)."""
        from refarch.bootstrap import make_index

        index: VectorIndex = make_index(self.settings)
        return index

    def sync(self, indexer: IndexerWorker) -> None:
        """Move every pending change into the index once: the relay drains the outbox, then
        ``indexer`` (an :class:`~refarch.pipeline.indexer.IndexerWorker`) handles the queue until it is
        empty -- what the services of ``refarch up`` do all the time."""
        from refarch.pipeline.relay import drain

        if self._relay_queue is None:
            self._relay_queue = self.queue("relay")
        with self.connect("relay") as conn:
            drain(conn, self._relay_queue, self.settings.relay_batch_size)
        while indexer.step().received:
            pass

    def env(self) -> dict[str, str]:
        """Environment for ``refarch`` subprocesses (indexers, relays) aimed at this sandbox."""
        s = self.settings
        return {
            **os.environ,
            "REFARCH_HOME": str(self.home), "DATABASE_URL": self.url,
            "REFARCH_APP_DATABASE_URL": self.role_url("app"),
            "REFARCH_RELAY_DATABASE_URL": self.role_url("relay"),
            "REFARCH_INDEXER_DATABASE_URL": self.role_url("indexer"),
            "REFARCH_INDEX": "local", "REFARCH_INDEX_PORT": str(s.index_port),
            "REFARCH_INDEX_HOST": s.index_host, "REFARCH_INDEX_NAME": s.index_name,
            "REFARCH_QUEUE_MAX_RECEIVES": str(s.queue_max_receives),
            "REFARCH_QUEUE_VISIBILITY_TIMEOUT": str(s.queue_visibility_timeout),
            "REFARCH_INDEXER_BATCH_SIZE": str(s.indexer_batch_size),
        }

    def refarch_command(self, *args: str) -> list[str]:
        """The command line of ``refarch ARGS`` with this interpreter."""
        return [sys.executable, "-m", "refarch.cli", *args]

    def close(self) -> None:
        """Stop everything and delete the directory."""
        for queue in self._queues:
            queue.close()
        try:
            if self.index_server is not None:
                self.index_server.stop()
        finally:
            try:
                self.postgres.stop()
            finally:
                shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_sandbox(
    *, prefix: str = "refarch-sandbox-", index: bool = True, index_name: str = "products",
    max_receives: int = 5, visibility_timeout: int = 30, base: Settings | None = None,
) -> Sandbox:
    """Start Postgres (migrated) and, with ``index``, a local index server; see the module doc."""
    from refarch.bootstrap import with_user
    from refarch.db.migrations import migrate
    from refarch.db.server import LocalPostgres
    from refarch.index.process import find_free_port, start_index_server

    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)  # Postgres runs as an unprivileged user when we are root
    postgres = LocalPostgres(home, find_free_port(), durable=False)
    server = None
    try:
        url = postgres.start().url
        migrate(url)
        settings = (base or Settings.from_env({})).with_(
            home=home, database_url=url, index_backend="local", index_port=find_free_port(),
            index_name=index_name, queue_backend="local", queue_max_receives=max_receives,
            queue_visibility_timeout=visibility_timeout,
            app_database_url=with_user(url, "refarch_app"),
            relay_database_url=with_user(url, "refarch_relay"),
            indexer_database_url=with_user(url, "refarch_indexer"),
        )
        if index:
            server = start_index_server(settings, home / "index", settings.index_port)
        return Sandbox(home, settings, postgres, server)
    except BaseException:
        if server is not None:
            server.stop()
        postgres.stop()
        shutil.rmtree(home, ignore_errors=True)
        raise
