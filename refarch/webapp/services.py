"""Everything the Streamlit page calls, behind one object built once per process.

The page (``app/streamlit_app.py``) holds no logic: it draws widgets and calls an
:class:`AppServices`. :func:`build_app_services` makes one from the settings through
:mod:`refarch.bootstrap` (the one place that picks backends); tests build one the same way
against their own servers and hand it to the page under :data:`SERVICES_KEY` in
``st.session_state``.

Connections: everything the page does connects as the least-privilege ``app`` role
(``REFARCH_APP_DATABASE_URL``, locally ``refarch_app``), never as the owner: product reads and
writes through a small pool, the status panel's figures, and the queue it counts, lists the
dead letters of and redrives (migration 0005 grants the role that much of the local queue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from refarch.db import products
from refarch.db.products import UNSET
from refarch.domain.product import StoredProduct
from refarch.errors import DatabaseError
from refarch.pipeline.progress import IndexingState, indexing_states
from refarch.settings import Settings
from refarch.webapp.url_state import SearchParams

if TYPE_CHECKING:
    from refarch.embeddings import Embedder
    from refarch.index.port import VectorIndex
    from refarch.local.status import StatusReport
    from refarch.queue.port import DeadLetter, Queue

log = logging.getLogger("refarch.app")

#: Where a test puts its own :class:`AppServices` in ``st.session_state`` before the first run.
SERVICES_KEY = "refarch_services"


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One search result as the page shows it: rank, score and the row from Postgres."""

    rank: int
    score: float
    product: StoredProduct
    #: The version the index matched on (None if its metadata had none).
    indexed_version: int | None

    @property
    def is_current(self) -> bool:
        """Whether the index already holds this row's latest searchable change."""
        return (
            self.indexed_version is not None
            and self.indexed_version >= self.product.search_version
        )


class AppServices:
    """The operations the page offers: search, product edits, indexing progress and status."""

    def __init__(
        self,
        *,
        pool: ConnectionPool,
        embedder: Embedder,
        index: VectorIndex,
        status_source: Callable[[], StatusReport],
        queue: Queue,
        closers: tuple[Callable[[], None], ...] = (),
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self._index = index
        self._status_source = status_source
        self._queue = queue
        self._closers = closers
        # The queue adapter holds one connection: one status call at a time across sessions.
        self._queue_lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise DatabaseError(f"the database did not answer in time ({exc})") from exc
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"lost the database connection: {str(exc).strip()}") from exc

    # -- search ---------------------------------------------------------------------------

    def search(self, params: SearchParams) -> list[ResultRow]:
        """Ranked results for ``params`` (``params.limit`` of them at most), rows from Postgres."""
        from refarch.search import build_filter, search

        with self._connection() as conn:
            result = search(
                params.query,
                embedder=self._embedder,
                index=self._index,
                conn=conn,
                top_k=params.limit,
                filter=build_filter(params.categories, params.price_min, params.price_max),
            )
        return [
            ResultRow(
                rank=rank,
                score=hit.score,
                product=hit,  # a SearchHit is the StoredProduct, read from Postgres
                indexed_version=hit.indexed_version,
            )
            for rank, hit in enumerate(result.hits, start=1)
        ]

    def categories(self) -> list[str]:
        """Every category in use, sorted."""
        with self._connection() as conn:
            return products.list_categories(conn)

    # -- products -------------------------------------------------------------------------

    def get_product(self, product_id: int) -> StoredProduct:
        """The product as Postgres has it now."""
        with self._connection() as conn:
            return products.get_product(conn, product_id)

    def add_product(
        self, *, sku: Any, name: Any, description: Any = "", category: Any = None, price: Any
    ) -> StoredProduct:
        """Validate and insert a product (see :func:`refarch.db.products.insert_product`)."""
        with self._connection() as conn:
            return products.insert_product(
                conn, sku=sku, name=name, description=description, category=category, price=price
            )

    def update_product(
        self,
        product_id: int,
        *,
        name: Any = UNSET,
        description: Any = UNSET,
        category: Any = UNSET,
        price: Any = UNSET,
        expected_version: int | None = None,
    ) -> StoredProduct:
        """Validate and apply changes (see :func:`refarch.db.products.update_product`)."""
        with self._connection() as conn:
            return products.update_product(
                conn, product_id, name=name, description=description, category=category,
                price=price, expected_version=expected_version,
            )

    def delete_product(self, product_id: int, *, expected_version: int | None = None) -> StoredProduct:
        """Delete a product; returns it as it was."""
        with self._connection() as conn:
            return products.delete_product(conn, product_id, expected_version=expected_version)

    def indexing_states(self, product_ids: list[int]) -> dict[int, IndexingState]:
        """Postgres version against indexed version for each id ("indexing…" / "searchable")."""
        with self._connection() as conn:
            return indexing_states(conn, self._index, product_ids)

    # -- pipeline status ------------------------------------------------------------------

    def status(self) -> StatusReport:
        """The pipeline's counts and process health (what ``refarch status`` shows)."""
        return self._status_source()

    def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        """The oldest messages in the dead-letter queue."""
        with self._queue_lock:
            letters = self._queue.dead_letters(limit)
        return letters

    def redrive(self) -> int:
        """Move every dead letter back to the queue; returns how many moved."""
        with self._queue_lock:
            moved = self._queue.redrive()
        log.info("event=dlq_redrive moved=%d", moved)
        return int(moved)

    def close(self) -> None:
        """Close the pool and whatever the builder opened."""
        self._pool.close()
        for close in self._closers:
            close()


def open_pool(url: str, *, max_size: int = 4, timeout: float = 10.0) -> ConnectionPool:
    """A small autocommit pool (each product change runs in its own explicit transaction).

    Connections are checked before use, so a restarted Postgres costs one retry, not an error.
    Raises DatabaseError when the database cannot be reached within ``timeout`` seconds.
    """
    from refarch.db.connect import redact_url

    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "connect_timeout": int(timeout)},
        check=ConnectionPool.check_connection,
        timeout=timeout,
        name="refarch-app",
        open=False,
    )
    try:
        pool.open(wait=True, timeout=timeout)
    except PoolTimeout as exc:
        pool.close()
        raise DatabaseError(
            f"cannot connect to {redact_url(url)} within {timeout:.0f} s "
            "(is the database running? `refarch up` starts the local stack)"
        ) from exc
    return pool


def build_app_services(settings: Settings) -> AppServices:
    """Build the app's services from ``settings`` (see the module docstring)."""
    from refarch import bootstrap as wiring
    from refarch.local.status import collect_status

    url = wiring.role_url(settings, "app")
    pool = open_pool(url)
    closers: list[Callable[[], None]] = []
    try:
        index = wiring.make_index(settings)
        embedder = wiring.make_embedder(settings)
        # Load the model now (under the page's spinner) rather than in the first search.
        embedder.encode_query("warm up")
        queue = wiring.make_queue(settings, url)
        closers.append(queue.close)
        closers.append(index.close)
    except BaseException:
        pool.close()
        for close in closers:
            close()
        raise
    return AppServices(
        pool=pool,
        embedder=embedder,
        index=index,
        status_source=lambda: collect_status(settings, url),
        queue=queue,
        closers=tuple(closers),
    )
