"""Reconcile: compare Postgres with the vector index and repair drift (``refarch reconcile``).

Postgres is the source of truth. For every product it has ``(id, search_version, text hash)``,
the hash computed by the indexer's own functions on the same record
(:func:`~refarch.domain.text.embedded_text`, :func:`~refarch.domain.text.content_hash`);
for every vector the index has ``(id, version, content_hash)`` in its metadata (listed with
``list`` and read with ``fetch``). A product is

* **missing** when the index has no vector for it;
* **stale** when the vector's version or text hash differs from the row's (older, or newer
  after Postgres was restored from a backup);
* **orphaned** when the vector's product no longer exists in Postgres.

``repair`` enqueues one message per drifted product (source ``repair``, which lets the indexer
rewrite a vector whose version is *ahead* of Postgres); the indexers then re-read the rows and
fix the index through the normal path. Every run is recorded in ``reconcile_runs``, which
``refarch status`` shows as the last drift.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from refarch.clock import SYSTEM_CLOCK, Clock
from refarch.db import products
from refarch.domain.product import StoredProduct
from refarch.domain.text import TextOf, content_hash, embedded_text
from refarch.domain.vectors import product_id_of, version_and_hash
from refarch.logs import event
from refarch.pipeline.changes import ProductChange, publish
from refarch.pipeline.indexer import ID_CHUNK
from refarch.queue.port import Queue

log = logging.getLogger("refarch.pipeline.reconcile")

#: (version, text hash) of one product or vector.
Entry = tuple[int | None, str | None]


@dataclass
class DriftReport:
    """What a comparison found. Lists hold product ids, sorted."""

    products: int
    vectors: int
    missing: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)
    repaired: int = 0
    #: Drifted products not repaired because their message is in the dead-letter queue.
    dead_lettered: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def drift(self) -> int:
        """Products whose vector is missing, stale or orphaned."""
        return len(self.missing) + len(self.stale) + len(self.orphaned)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"{self.products} products, {self.vectors} vectors: {len(self.missing)} missing, "
            f"{len(self.stale)} stale, {len(self.orphaned)} orphaned"
            + (f"; {self.repaired} repairs enqueued" if self.repaired else "")
            + (f"; {len(self.dead_lettered)} left alone: in the dead-letter queue"
               if self.dead_lettered else "")
        )

    def to_json(self, limit: int = 20) -> dict[str, Any]:
        """JSON-able summary with up to ``limit`` example ids of each kind."""
        return {
            "products": self.products, "vectors": self.vectors, "drift": self.drift,
            "missing": len(self.missing), "stale": len(self.stale), "orphaned": len(self.orphaned),
            "repaired": self.repaired, "dead_lettered": len(self.dead_lettered),
            "seconds": round(self.seconds, 3),
            "examples": {
                "missing": self.missing[:limit], "stale": self.stale[:limit],
                "orphaned": self.orphaned[:limit],
            },
        }


def compare(postgres: Mapping[int, Entry], index: Mapping[int, Entry]) -> DriftReport:
    """Classify every id of either side (a pure function)."""
    report = DriftReport(products=len(postgres), vectors=len(index))
    for pid, (version, text_hash) in postgres.items():
        held = index.get(pid)
        if held is None:
            report.missing.append(pid)
        elif held[0] != version or (text_hash is not None and held[1] != text_hash):
            report.stale.append(pid)
    report.orphaned = [pid for pid in index if pid not in postgres]
    report.missing.sort()
    report.stale.sort()
    report.orphaned.sort()
    return report


def text_hash_of(product: StoredProduct, text_of: TextOf) -> str | None:
    """The content hash the indexer stores for ``product``; None when it has no text to embed."""
    try:
        return content_hash(embedded_text(product, text_of))
    except Exception:  # noqa: BLE001 - an unindexable row: compare versions only
        return None


def postgres_entries(conn: psycopg.Connection, text_of: TextOf | None) -> dict[int, Entry]:
    """``{id: (search_version, text hash)}`` for every product (hash None when ``text_of`` is)."""
    return {
        product.id: (product.search_version,
                     text_hash_of(product, text_of) if text_of is not None else None)
        for product in products.iter_products(conn)
    }


def index_entries(index: Any) -> dict[int, Entry]:
    """``{id: (version, content_hash)}`` for every vector, from ``list`` + ``fetch``."""
    ids: list[str] = list(index.list_ids())
    entries: dict[int, Entry] = {}
    for start in range(0, len(ids), ID_CHUNK):
        fetched = index.fetch(ids[start : start + ID_CHUNK])
        for vid, (_, metadata) in fetched.items():
            pid = product_id_of(vid)
            if pid is not None:  # else not one of ours (a vector someone else wrote)
                entries[pid] = version_and_hash(metadata)
    return entries


def reconcile(
    conn: psycopg.Connection,
    index: Any,
    *,
    text_of: TextOf | None = None,
    repair_queue: Queue | None = None,
    record: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> DriftReport:
    """Compare Postgres with the index; with ``repair_queue``, enqueue a fix per drifted id.

    ``text_of`` (``refarch.embeddings.product_text``) adds the text hash to the comparison, so
    a vector embedded from other text than the row's is found even at the same version.
    ``record`` stores the run in ``reconcile_runs`` (needs the owner's connection). ``clock``
    stamps the run and the repair messages and times the comparison.
    """
    started_at = clock.now()
    started = clock.monotonic()
    postgres = postgres_entries(conn, text_of)
    held = index_entries(index)
    report = compare(postgres, held)
    if repair_queue is not None and report.drift:
        # A product whose message sits in the dead-letter queue failed for a reason a retry
        # will not fix; re-enqueueing it every round would only pile up dead letters. It stays
        # in the report; fix the row (its change is captured) or redrive the DLQ.
        dead = dead_lettered_products(repair_queue)
        report.dead_lettered = sorted(dead & set(ids_of(report)))
        run = uuid.uuid4().hex[:12]
        now = clock.now()
        fixes = [
            ProductChange(pid, postgres[pid][0] or 0, "upsert", now, "repair", run)
            for pid in report.missing + report.stale if pid not in dead
        ] + [
            ProductChange(pid, held[pid][0] or 0, "delete", now, "repair", run)
            for pid in report.orphaned if pid not in dead
        ]
        report.repaired = publish(repair_queue, fixes)
    report.seconds = clock.monotonic() - started
    if record:
        save_report(conn, report, started_at)
    event(
        log, "reconcile", products=report.products, vectors=report.vectors,
        missing=len(report.missing), stale=len(report.stale), orphaned=len(report.orphaned),
        repaired=report.repaired, seconds=report.seconds,
    )
    return report


def save_report(conn: psycopg.Connection, report: DriftReport, started_at: datetime) -> None:
    """Append the run to ``reconcile_runs``."""
    products.record_reconcile_run(
        conn, started_at=started_at, products=report.products, vectors=report.vectors,
        missing=len(report.missing), stale=len(report.stale), orphaned=len(report.orphaned),
        repaired=report.repaired,
    )


def last_report(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The latest recorded run (for status), or None when reconcile never ran."""
    run = products.last_reconcile_run(conn)
    if run is None:
        return None
    return {
        "at": run.finished_at.isoformat(), "products": run.products, "vectors": run.vectors,
        "missing": run.missing, "stale": run.stale, "orphaned": run.orphaned,
        "drift": run.missing + run.stale + run.orphaned, "repaired": run.repaired,
    }


def dead_lettered_products(queue: Queue, limit: int = 10_000) -> set[int]:
    """Ids of the products with a message in the dead-letter queue (from the group ids)."""
    found: set[int] = set()
    for letter in queue.dead_letters(limit):
        prefix, _, number = letter.group_id.partition("-")
        if prefix == "product" and number.isdigit():
            found.add(int(number))
    return found


def ids_of(report: DriftReport) -> Iterable[int]:
    """Every drifted product id."""
    return [*report.missing, *report.stale, *report.orphaned]
