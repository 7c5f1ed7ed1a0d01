"""Is the index caught up with Postgres? ``refarch sync-wait`` and the freshness figure.

Every committed change is, at any moment, in exactly one of three places: an outbox row (the
relay has not published it), a queue message (no indexer has finished it; the relay's queue
send commits before its outbox delete, the indexer deletes a message only after writing the
index) or the index. So "everything committed before now is searchable" holds once the outbox
rows that existed at the start are gone and the queue has nothing visible or in flight; the
vector count is compared with the product count as a last check (products whose messages went
to the dead-letter queue are allowed for, and reported).

With writers that never pause, the queue may never be empty at one instant; ``sync-wait`` then
runs into its timeout, which scripts should set.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from tqdm import tqdm

from refarch.db import products
from refarch.pipeline.indexer import fetch_state
from refarch.settings import Settings

#: How many recently changed products the freshness probe looks at.
FRESHNESS_PROBE = 200


@dataclass
class SyncState:
    """One look at the pipeline."""

    synced: bool
    products: int
    vectors: int
    outbox_pending: int
    queue_visible: int
    queue_in_flight: int
    dead_letters: int
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def wait_for_sync(
    settings: Settings,
    admin_url: str,
    *,
    timeout: float | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    poll: float = 0.2,
    queue: Any = None,
    index: Any = None,
) -> SyncState:
    """Wait until every change committed before the call is searchable (or ``timeout``)."""
    from refarch.bootstrap import make_index, make_queue

    own_queue = queue is None
    own_index = index is None
    queue = queue or make_queue(settings, admin_url)
    index = index or make_index(settings)
    started = time.monotonic()
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            target = products.outbox_high_water(conn)
            with tqdm(desc="syncing", unit="product", disable=not progress, mininterval=1.0) as bar:
                while True:
                    count = products.count_products(conn)
                    outbox_left = products.outbox_pending_through(conn, target)
                    stats = queue.stats()
                    vectors = index.count()
                    bar.total = count
                    bar.set_postfix(outbox=outbox_left, queued=stats.visible + stats.in_flight,
                                    dlq=stats.dead, refresh=False)
                    bar.update(min(vectors, count) - bar.n)
                    state = SyncState(
                        synced=False, products=count, vectors=vectors,
                        outbox_pending=outbox_left, queue_visible=stats.visible,
                        queue_in_flight=stats.in_flight, dead_letters=stats.dead,
                        seconds=time.monotonic() - started,
                    )
                    if (outbox_left == 0 and stats.visible == 0 and stats.in_flight == 0
                            and abs(count - vectors) <= stats.dead):
                        state.synced = True
                        return state
                    if timeout is not None and time.monotonic() - started >= timeout:
                        return state
                    if stop is not None and stop.wait(poll):
                        return state
                    if stop is None:
                        time.sleep(poll)
    finally:
        if own_queue:
            queue.close()
        if own_index:
            index.close()


def freshness_lag(conn: psycopg.Connection, index: Any) -> float:
    """Seconds the index is behind: the age of the oldest change not yet searchable (0: none).

    Looks at the oldest outbox row and at the most recently changed products whose index
    version is behind their row.
    """
    now = datetime.now(UTC)
    lag = 0.0
    oldest = products.outbox_stats(conn).oldest
    if oldest is not None:
        lag = max(lag, (now - oldest).total_seconds())
    recent = products.recently_changed(conn, FRESHNESS_PROBE)
    if recent:
        held = fetch_state(index, [product.id for product in recent])
        for product in recent:
            state = held.get(product.id)
            if state is None or (state.version or 0) < product.search_version:
                assert product.updated_at is not None  # the column is NOT NULL
                lag = max(lag, (now - product.updated_at).total_seconds())
    return round(lag, 3)


@dataclass(frozen=True, slots=True)
class IndexingState:
    """Where a product's latest change is: Postgres's version against the index's.

    ``postgres_version`` is the row's ``search_version`` (None once the row is deleted);
    ``indexed_version`` the version in the vector's metadata (None when there is no vector).
    """

    product_id: int
    postgres_version: int | None
    indexed_version: int | None

    @property
    def state(self) -> str:
        """``searchable``, ``indexing`` (a newer change is on its way), ``removing`` (deleted in
        Postgres, still in the index) or ``deleted`` (gone from both)."""
        if self.postgres_version is None:
            return "deleted" if self.indexed_version is None else "removing"
        if self.indexed_version is not None and self.indexed_version >= self.postgres_version:
            return "searchable"
        return "indexing"

    @property
    def is_synced(self) -> bool:
        """Whether search reflects the latest change (searchable, or deleted from both)."""
        return self.state in ("searchable", "deleted")


def indexing_states(
    conn: psycopg.Connection[Any], index: Any, product_ids: list[int]
) -> dict[int, IndexingState]:
    """For each id, the version Postgres holds and the version the index holds.

    ``index`` is the vector index the wiring builds (``fetch`` by vector id). Lets the app
    show an edited row as "indexing…" until the index has caught up, then "searchable".
    """
    ids = list(dict.fromkeys(int(pid) for pid in product_ids))
    if not ids:
        return {}
    postgres = products.search_versions(conn, ids)
    held = fetch_state(index, ids)
    return {
        pid: IndexingState(
            pid, postgres.get(pid), held[pid].version if pid in held else None
        )
        for pid in ids
    }
