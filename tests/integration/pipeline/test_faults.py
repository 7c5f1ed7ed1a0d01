"""Fault test (issue 4, item 9; invariants 1-4 and 6 under fire), with real processes.

A writer applies 2,000 random inserts, updates and deletes while the test

* ``kill -9``s the relay and the indexers mid-batch (the supervisor restarts them),
* restarts Postgres the hard way (immediate shutdown: crash recovery on start),
* injects duplicated, reordered, stale and bogus messages into the queue.

After recovery the index must equal Postgres exactly (ids, versions, text hashes) and
reconcile must report zero drift, without repairing anything. The counts are printed at the end
of the run (a test summary, see tests/support/reports.py).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from refarch.bootstrap import ensure_index, make_index, with_user
from refarch.catalog import generate_products
from refarch.db.load import load_products
from refarch.db.migrations import migrate
from refarch.db.server import LocalPostgres
from refarch.embeddings import product_text
from refarch.index.process import find_free_port, start_index_server
from refarch.local.stack import indexer_processes
from refarch.local.supervisor import ProcessSpec, Supervisor
from refarch.pipeline.changes import ProductChange
from refarch.pipeline.progress import wait_for_sync
from refarch.pipeline.reconcile import reconcile
from refarch.queue.local import PostgresQueue
from refarch.settings import Settings
from tests.support.reports import SUMMARY_PROPERTY
from tests.support.waiting import wait_until

from .harness import Pipeline

pytestmark = pytest.mark.slow

INITIAL_PRODUCTS = 300
OPERATIONS = 2_000
CATEGORIES = ["Drinkware", "Kitchen", "Garden", "Outerwear", "Toys"]
WORDS = ("steel insulated travel mug lid commute coffee tea bamboo cotton waterproof jacket "
         "garden hose brass nozzle wooden puzzle kids lunch bag cooler").split()


@dataclass
class Counts:
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    rolled_back: int = 0
    retried: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    postgres_restarts: int = 0
    injected: int = 0
    mid_batch: int = 0

    @property
    def committed(self) -> int:
        return self.inserts + self.updates + self.deletes


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


class Writer(threading.Thread):
    """Random committed changes, retried through a Postgres restart."""

    def __init__(self, url: str, counts: Counts, seed: int = 4) -> None:
        super().__init__(daemon=True)
        self.url, self.counts, self.rng = url, counts, random.Random(seed)
        self.done_ops = 0
        self.error: BaseException | None = None

    def _one(self, conn: psycopg.Connection) -> str | None:
        rng = self.rng
        kind = rng.choices(["insert", "update", "delete"], weights=[30, 50, 20])[0]
        if kind != "insert":
            row = conn.execute("SELECT id FROM products ORDER BY random() LIMIT 1").fetchone()
            if row is None:
                kind = "insert"
        with conn.transaction():
            if kind == "insert":
                conn.execute(
                    "INSERT INTO products (sku, name, description, price, category) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (f"W-{rng.getrandbits(48):x}", _text(rng, 3).title(), _text(rng, 25),
                     round(rng.uniform(1, 300), 2), rng.choice(CATEGORIES)),
                )
            elif kind == "update":
                column, value = rng.choice([
                    ("name", _text(rng, 3).title()), ("description", _text(rng, 25)),
                    ("price", round(rng.uniform(1, 300), 2)), ("category", rng.choice(CATEGORIES)),
                    ("last_updated", "now()"),
                ])
                if column == "last_updated":
                    conn.execute("UPDATE products SET last_updated = now() WHERE id = %s", (row[0],))
                else:
                    conn.execute(f"UPDATE products SET {column} = %s WHERE id = %s", (value, row[0]))
            else:
                conn.execute("DELETE FROM products WHERE id = %s", (row[0],))
            if rng.random() < 0.03:
                raise _Rollback()
        return kind

    def run(self) -> None:
        try:
            conn = None
            while self.done_ops < OPERATIONS:
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                    kind = self._one(conn)
                    setattr(self.counts, kind + "s", getattr(self.counts, kind + "s") + 1)
                    self.done_ops += 1
                except _Rollback:
                    self.counts.rolled_back += 1
                except psycopg.OperationalError:
                    self.counts.retried += 1  # Postgres is restarting: try again shortly
                    conn = None
                    time.sleep(0.2)
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


class _Rollback(Exception):
    pass


def _immediate_restart(server: LocalPostgres) -> None:
    """Crash-stop Postgres (SIGQUIT to the postmaster = immediate shutdown), then start it."""
    pid = server.status().pid
    assert pid
    os.kill(pid, signal.SIGQUIT)
    wait_until(lambda: not server.status().running, 60)
    time.sleep(0.5)
    server.start()


def _kill_mid_batch(supervisor: Supervisor, name: str, busy, counts: Counts, timeout: float = 20) -> None:
    """kill -9 process ``name`` at a moment ``busy()`` says it has work in hand."""
    caught = wait_until(busy, timeout, interval=0.01)
    pid = supervisor.pid(name)
    if pid:
        os.kill(pid, signal.SIGKILL)
        counts.kills[name] = counts.kills.get(name, 0) + 1
        counts.mid_batch += int(caught)


def test_index_equals_postgres_after_kills_restarts_and_injected_messages(
    tmp_path: Path, local_postgres, record_property
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server = local_postgres()  # its own server: this test restarts it
    server.start()
    owner = server.url()
    migrate(owner)
    index_port = find_free_port()
    settings = Settings.from_env({
        "REFARCH_HOME": str(home), "DATABASE_URL": owner, "REFARCH_INDEX_PORT": str(index_port),
        "REFARCH_INDEX_NAME": "faults", "REFARCH_QUEUE_VISIBILITY_TIMEOUT": "5",
        "REFARCH_QUEUE_MAX_RECEIVES": "50",
    })
    index_server = start_index_server(settings, tmp_path / "index", index_port)
    counts = Counts()
    supervisor = None
    try:
        ensure_index(settings)
        with psycopg.connect(owner) as conn:
            load_products(conn, generate_products(INITIAL_PRODUCTS, seed=3), progress=False)
        env = {
            **os.environ, "REFARCH_HOME": str(home), "DATABASE_URL": owner,
            "REFARCH_RELAY_DATABASE_URL": with_user(owner, "refarch_relay"),
            "REFARCH_INDEXER_DATABASE_URL": with_user(owner, "refarch_indexer"),
            "REFARCH_INDEX": "local", "REFARCH_INDEX_PORT": str(index_port),
            "REFARCH_INDEX_NAME": "faults", "REFARCH_QUEUE_VISIBILITY_TIMEOUT": "5",
            "REFARCH_QUEUE_MAX_RECEIVES": "50", "REFARCH_RELAY_POLL_SECONDS": "1",
            "REFARCH_INDEXER_BATCH_SIZE": "32", "REFARCH_RELAY_BATCH_SIZE": "50",
        }
        specs = [ProcessSpec("relay", [sys.executable, "-m", "refarch.cli", "relay"])]
        specs += indexer_processes(settings, 2)
        supervisor = Supervisor(specs, home / "logs", base_env=env, backoff_initial=0.3,
                                stable_after=3)
        supervisor.start_all()
        polling = threading.Event()

        def keep_polling() -> None:
            while not polling.wait(0.2):
                supervisor.poll()

        poller = threading.Thread(target=keep_polling, daemon=True)
        poller.start()
        observer = PostgresQueue(owner, max_receives=50, visibility_timeout=5)

        def relay_busy() -> bool:
            """The relay is inside a batch: its transaction holds claimed outbox rows."""
            try:
                with psycopg.connect(owner, autocommit=True, connect_timeout=2) as c:
                    return c.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'refarch_relay' "
                        "AND xact_start IS NOT NULL AND query ILIKE '%%outbox%%'"
                    ).fetchone()[0] > 0
            except psycopg.Error:
                return False

        def indexers_busy() -> bool:
            try:
                return observer.stats().in_flight > 0
            except Exception:  # noqa: BLE001
                return False

        started = time.monotonic()
        writer = Writer(owner, counts)
        writer.start()
        plan = [
            (0.10, lambda: _kill_mid_batch(supervisor, "relay", relay_busy, counts)),
            (0.25, lambda: _kill_mid_batch(supervisor, "indexer-1", indexers_busy, counts)),
            (0.40, lambda: (_immediate_restart(server), setattr(counts, "postgres_restarts", 1))),
            (0.55, lambda: (_kill_mid_batch(supervisor, "indexer-1", indexers_busy, counts),
                            _kill_mid_batch(supervisor, "indexer-2", indexers_busy, counts))),
            (0.70, lambda: _inject(owner, counts)),
            (0.85, lambda: _kill_mid_batch(supervisor, "relay", relay_busy, counts)),
        ]
        for at, action in plan:
            while writer.is_alive() and writer.done_ops < at * OPERATIONS:
                time.sleep(0.05)
            action()
        writer.join(timeout=600)
        assert writer.error is None, writer.error
        assert not writer.is_alive()
        _inject(owner, counts)  # once more after the last write: duplicates of final versions
        state = wait_for_sync(settings, owner, timeout=300, progress=False, queue=observer)
        assert state.synced, f"not synced: {state}"
        polling.set()
        poller.join()

        pipeline = Pipeline(owner, with_user(owner, "refarch_relay"), with_user(owner, "refarch_indexer"),
                            make_index(settings), embedder=None)
        try:
            expected = pipeline.postgres_state()
            actual = pipeline.index_state()
        finally:
            pipeline.close()
        missing = sorted(set(expected) - set(actual))
        orphaned = sorted(set(actual) - set(expected))
        different = sorted(pid for pid in set(expected) & set(actual) if expected[pid] != actual[pid])
        index = make_index(settings)
        with psycopg.connect(owner, autocommit=True) as conn:
            report = reconcile(conn, index, text_of=product_text, record=False)
        dead = observer.stats().dead
        observer.close()
        record_property(SUMMARY_PROPERTY, (
            f"fault test: {counts.committed} changes committed ({counts.inserts} inserts, "
            f"{counts.updates} updates, {counts.deletes} deletes; {counts.rolled_back} rolled "
            f"back, {counts.retried} retried through the restart); processes killed with "
            f"kill -9: {sum(counts.kills.values())} {counts.kills} ({counts.mid_batch} caught "
            f"mid-batch); Postgres restarts: "
            f"{counts.postgres_restarts}; injected messages: {counts.injected}; "
            f"final: {len(expected)} products, {len(actual)} vectors; drift after recovery: "
            f"{report.drift} (missing {len(missing)}, orphaned {len(orphaned)}, "
            f"different {len(different)}); dead letters: {dead}; "
            f"{time.monotonic() - started:.0f} s"
        ))
        assert counts.committed == OPERATIONS
        assert sum(counts.kills.values()) >= 4 and counts.postgres_restarts == 1
        assert (missing, orphaned, different) == ([], [], [])
        assert report.drift == 0
        assert dead == 0
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        index_server.stop()
        server.stop()


def _inject(owner: str, counts: Counts) -> None:
    """Duplicates (same change again), reordered and stale versions, deleted and unknown ids."""
    rng = random.Random(counts.injected + 11)
    queue = PostgresQueue(owner, max_receives=50, visibility_timeout=5)
    try:
        with psycopg.connect(owner, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, search_version FROM products ORDER BY random() LIMIT 60").fetchall()
            top = conn.execute("SELECT coalesce(max(id), 0) FROM products").fetchone()[0]
        changes = []
        for i, (pid, version) in enumerate(rows):
            run = f"inject{counts.injected}-{i}"
            # The current version twice, then an older one after it (reordered/stale).
            changes.append(ProductChange(pid, version, "upsert", source="backfill", run=run + "a"))
            changes.append(ProductChange(pid, version, "upsert", source="backfill", run=run + "b"))
            changes.append(ProductChange(pid, max(1, version - rng.randint(1, 50)), "upsert",
                                         source="change", run=run + "c"))
            if i % 5 == 0:  # a stale delete for a product that exists
                changes.append(ProductChange(pid, max(1, version - 1), "delete", source="change",
                                             run=run + "d"))
        for k in range(10):  # products that never existed or were deleted
            changes.append(ProductChange(top + 1000 + k, 1, "upsert", source="change", run=f"ghost{k}"))
        order = list(range(len(changes)))
        rng.shuffle(order)
        messages = [changes[i].to_message() for i in order]
        for start in range(0, len(messages), 10):
            queue.send_batch(messages[start : start + 10])
        counts.injected += len(messages)
    finally:
        queue.close()
