"""Backfill: announce every existing product to the indexers (``refarch backfill``).

Used to build an index from scratch (a new Pinecone index, a wiped local one) or after large
drift. It walks ``products`` by id in short autocommit reads (keyset pagination): each read is
its own snapshot and takes no row locks, so live edits are never blocked or delayed; an edit
that lands during the walk reaches the index through the outbox as usual.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from tqdm import tqdm

from refarch.logs import event
from refarch.pipeline.changes import ProductChange, publish
from refarch.queue.port import Queue

log = logging.getLogger("refarch.pipeline.backfill")


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """How many products were enqueued, and how long it took."""

    enqueued: int
    seconds: float
    run: str


def backfill(
    conn: psycopg.Connection,
    queue: Queue,
    *,
    batch_size: int = 1000,
    progress: bool = True,
    run: str | None = None,
) -> BackfillResult:
    """Enqueue one upsert message per product, in id order, ``batch_size`` rows per read.

    ``conn`` must be in autocommit mode so that no transaction stays open across batches.
    ``run`` (default: a fresh token) goes into the deduplication ids, so a second backfill
    is not dropped by the queue as a duplicate of the first.
    """
    run = run or uuid.uuid4().hex[:12]
    started = time.perf_counter()
    total = conn.execute("SELECT count(*) FROM products").fetchone()[0]  # type: ignore[index]
    enqueued = 0
    last_id = None
    with tqdm(total=total, desc="backfill", unit="product", disable=not progress) as bar:
        while True:
            if last_id is None:
                rows = conn.execute(
                    "SELECT id, search_version FROM products ORDER BY id LIMIT %s", (batch_size,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT id, search_version FROM products WHERE id > %s ORDER BY id LIMIT %s",
                    (last_id, batch_size),
                ).fetchall()
            if not rows:
                break
            now = datetime.now(UTC)
            changes = [
                ProductChange(int(pid), int(version), "upsert", now, "backfill", run)
                for pid, version in rows
            ]
            enqueued += publish(queue, changes)
            last_id = rows[-1][0]
            bar.update(len(rows))
    seconds = time.perf_counter() - started
    event(log, "backfill_enqueued", count=enqueued, seconds=seconds, run=run)
    return BackfillResult(enqueued, seconds, run)
