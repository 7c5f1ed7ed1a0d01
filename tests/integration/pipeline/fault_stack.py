"""A small real stack for the fault matrix (tests/integration/pipeline/test_fault_matrix.py).

Its own Postgres server (the matrix restarts it), a local index server armed with the unsafe
write-fault hook (:mod:`refarch.index.server.faults`), and a real relay and one real indexer
process under the supervisor, with a short visibility timeout and a low receive limit so an
outage longer than ``max_receives x visibility`` takes seconds, not minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import psycopg

from refarch.bootstrap import ensure_index, make_index, with_user
from refarch.db.server import LocalPostgres
from refarch.embeddings import product_text
from refarch.index.client import LOCAL_PLACEHOLDER_KEY
from refarch.index.process import IndexServerHandle, start_index_server
from refarch.index.server.faults import ARM_VARIABLE, PATH
from refarch.local.stack import indexer_processes
from refarch.local.supervisor import ProcessSpec, Supervisor
from refarch.pipeline.indexer import content_hash
from refarch.pipeline.reconcile import index_entries, reconcile
from refarch.queue.local import PostgresQueue
from refarch.settings import Settings
from tests.support.waiting import wait_until

#: Short enough that an outage past the receive limit lasts seconds: 3 receives x 2 s = 6 s.
VISIBILITY_TIMEOUT = 2
MAX_RECEIVES = 3
RECEIVE_LIMIT_SECONDS = VISIBILITY_TIMEOUT * MAX_RECEIVES


class FaultStack:
    """Postgres, an armed index server, a relay and an indexer process (see the module docstring)."""

    def __init__(self, home: Path, server: LocalPostgres, index_port: int) -> None:
        self.home, self.server, self.index_port = home, server, index_port
        self.owner = server.url()
        self.settings = Settings.from_env({
            "REFARCH_HOME": str(home), "DATABASE_URL": self.owner,
            "REFARCH_INDEX_PORT": str(index_port), "REFARCH_INDEX_NAME": "matrix",
        })
        self.index_server: IndexServerHandle | None = None
        self.supervisor: Supervisor | None = None
        self._polling = threading.Event()
        self._poller: threading.Thread | None = None
        self.index: Any = None
        self.queue: PostgresQueue | None = None
        #: The tmpfs the index data directory is on, when mount_small_index_dir could mount it.
        self.small_index_dir: Path | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def mount_small_index_dir(self, size_mb: int = 64) -> str | None:
        """Put the index data directory on a tmpfs of ``size_mb`` (so a test can fill it);
        returns why not when this machine cannot (not root, no mount)."""
        target = self.home / "index"
        target.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return "mounting a size-limited filesystem needs root"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {done.stderr.strip()}"
        self.small_index_dir = target
        return None

    def fill_index_dir(self) -> int:
        """Fill the index's filesystem to the last byte; returns the bytes written."""
        assert self.small_index_dir is not None
        filler = self.small_index_dir.parent / "index" / "filler.bin"
        written = 0
        with open(filler, "wb", buffering=0) as out:
            chunk = b"\0" * (1 << 20)
            while True:
                try:
                    written += out.write(chunk)
                except OSError:
                    break
            while True:  # the last partial megabyte, byte runs at a time
                try:
                    written += out.write(b"\0" * 512)
                except OSError:
                    break
        return written

    def free_index_dir(self) -> None:
        assert self.small_index_dir is not None
        (self.small_index_dir / "filler.bin").unlink()

    def start_index_server(self) -> None:
        self.index_server = start_index_server(
            self.settings, self.home / "index", self.index_port, extra_env={ARM_VARIABLE: "1"})

    def start(self) -> None:
        self.start_index_server()
        ensure_index(self.settings)
        self.index = make_index(self.settings)
        self.queue = PostgresQueue(self.owner, max_receives=MAX_RECEIVES,
                                   visibility_timeout=VISIBILITY_TIMEOUT)
        env = {
            **os.environ, "REFARCH_HOME": str(self.home), "DATABASE_URL": self.owner,
            "REFARCH_RELAY_DATABASE_URL": with_user(self.owner, "refarch_relay"),
            "REFARCH_INDEXER_DATABASE_URL": with_user(self.owner, "refarch_indexer"),
            "REFARCH_INDEX": "local", "REFARCH_INDEX_PORT": str(self.index_port),
            "REFARCH_INDEX_NAME": "matrix",
            "REFARCH_QUEUE_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "REFARCH_QUEUE_MAX_RECEIVES": str(MAX_RECEIVES), "REFARCH_RELAY_POLL_SECONDS": "1",
            "REFARCH_INDEXER_BATCH_SIZE": "8", "REFARCH_RELAY_BATCH_SIZE": "20",
        }
        specs = [ProcessSpec("relay", [sys.executable, "-m", "refarch.cli", "relay"])]
        specs += indexer_processes(self.settings, 1)
        self.supervisor = Supervisor(specs, self.home / "logs", base_env=env, backoff_initial=0.3,
                                     stable_after=3)
        self.supervisor.start_all()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._polling.wait(0.2):
            assert self.supervisor is not None
            self.supervisor.poll()

    def stop(self) -> None:
        self._polling.set()
        if self._poller is not None:
            self._poller.join()
        if self.supervisor is not None:
            self.supervisor.stop_all()
        for part in (self.queue, self.index):
            if part is not None:
                part.close()
        if self.index_server is not None:
            self.index_server.stop()
        if self.small_index_dir is not None:
            subprocess.run(["umount", "-l", str(self.small_index_dir)], check=False)

    # -- faults -------------------------------------------------------------------------------

    def write_fault(self, **fault: Any) -> None:
        """Make the index server fail writes (``status``/``enospc``, ``seconds``/``count``)."""
        response = httpx.post(f"{self._index_url}{PATH}", json=fault,
                              headers={"Api-Key": LOCAL_PLACEHOLDER_KEY}, timeout=5)
        assert response.status_code == 200, response.text

    def faults_failed(self) -> int:
        """How many write requests the index server failed on purpose so far."""
        response = httpx.get(f"{self._index_url}{PATH}", headers={"Api-Key": LOCAL_PLACEHOLDER_KEY},
                             timeout=5)
        return int(response.json()["failed"])

    @property
    def _index_url(self) -> str:
        return f"http://127.0.0.1:{self.index_port}"

    def restart_postgres(self) -> None:
        """Crash-stop Postgres (SIGQUIT to the postmaster: immediate shutdown), then start it."""
        pid = self.server.status().pid
        assert pid
        os.kill(pid, signal.SIGQUIT)
        assert wait_until(lambda: not self.server.status().running, 60)
        self.server.start()

    def relay_busy(self) -> bool:
        """The relay is inside a batch: its transaction holds claimed outbox rows."""
        try:
            rows = self.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'refarch_relay' "
                "AND xact_start IS NOT NULL AND query ILIKE '%%outbox%%'")
        except psycopg.Error:
            return False
        return int(rows[0][0]) > 0

    # -- state --------------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run ``query`` as the owner (reconnecting: Postgres may have just restarted)."""
        with psycopg.connect(self.owner, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def insert(self, sku: str, name: str | None = None, description: str = "a sturdy thing") -> int:
        rows = self.sql(
            "INSERT INTO products (sku, name, description, price, category) "
            "VALUES (%s, %s, %s, 10, 'Kitchen') RETURNING id",
            (sku, name or f"Product {sku}", description))
        return int(rows[0][0])

    def postgres_state(self) -> dict[int, tuple[int, str]]:
        rows = self.sql("SELECT id, search_version, name, category, description FROM products")
        return {int(pid): (int(v), content_hash(product_text({"name": n, "category": c, "description": d})))
                for pid, v, n, c, d in rows}

    def index_state(self) -> dict[int, tuple[int | None, str | None]]:
        return index_entries(self.index)

    def pending(self) -> int:
        """Outbox rows plus queue messages not yet settled (visible or in flight)."""
        assert self.queue is not None
        stats = self.queue.stats()
        outbox = self.sql("SELECT count(*) FROM outbox")[0][0]
        return int(outbox) + stats.visible + stats.in_flight

    def dead(self) -> int:
        assert self.queue is not None
        return self.queue.stats().dead

    def wait_synced(self, timeout: float, *, except_ids: frozenset[int] = frozenset()) -> bool:
        """Wait until nothing is pending and the index equals Postgres (but ``except_ids``)."""
        def synced() -> bool:
            try:
                if self.pending():
                    return False
                expected = {k: v for k, v in self.postgres_state().items() if k not in except_ids}
                return self.index_state() == expected
            except Exception:  # noqa: BLE001 - not yet (a part is restarting)
                return False
        return wait_until(synced, timeout, interval=0.2)

    def drift(self) -> int:
        """Reconcile's drift (ids, versions, text hashes), repairing nothing."""
        with psycopg.connect(self.owner, autocommit=True) as conn:
            return reconcile(conn, self.index, text_of=product_text, record=False).drift

    def indexer_log(self) -> str:
        return (self.home / "logs" / "indexer-1.log").read_text(errors="replace")
