"""Bulk-load products into Postgres with COPY.

Products stream from any iterable in batches. Each batch is COPYed -- straight into
``products`` while every SKU is new, else into a temporary staging table -- and merged by SKU
(see :mod:`refarch.db.merge`):

* a new SKU is inserted;
* an existing SKU whose name, category, description, price or last_updated differ is updated
  (``updated_at`` is set to now), so edits in a re-exported catalog are applied;
* an existing SKU with identical values is left untouched (no write, no new row version, no
  re-embedding downstream), so loading the same file twice is a no-op.

The same SKU twice in one input: the later occurrence wins and the earlier one is counted in
``duplicates``. A product that breaks a rule of :mod:`refarch.domain.validation` (the rules the
editor applies: an empty SKU or name, an over-long field, a control character, a negative, too
large or sub-cent price...) is skipped and reported in ``rejected``; the rest loads. Text is
cleaned as the editor cleans it (NFC, surrounding whitespace stripped), so every loaded product
can be saved by the editor unchanged.

Each batch commits on its own (inside the caller's transaction, if one is open, it becomes a
savepoint instead), so a long load shows progress and a load that fails half way can simply
be run again. Naive ``last_updated`` datetimes are taken as UTC.

Reading, validating and encoding the next batch happens in a helper thread while the server
merges the current one (psycopg releases the GIL while it waits), so on two cores the Python
side and the database overlap instead of taking turns. Memory stays bounded: at most the
batch being merged and two prepared ones exist at a time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import psycopg
from tqdm import tqdm

from refarch.db.copy_rows import copy_line, product_row
from refarch.db.merge import BatchMerger
from refarch.domain.product import Product
from refarch.errors import DatabaseError, InputError
from refarch.logs import event

log = logging.getLogger(__name__)

#: Batches prepared ahead of the one being merged.
_PREFETCH = 2


@dataclass(frozen=True)
class RejectedProduct:
    """A product that was not loaded, with its 1-based position in the input and why."""

    position: int
    sku: str
    reason: str


@dataclass
class LoadResult:
    """Counts of one load. ``inserted + updated + unchanged`` rows reached the table's state."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Input rows superseded by a later row with the same SKU in the same batch. (Across
    #: batches the later row simply updates the earlier one; the final state is the same.)
    duplicates: int = 0
    rejected: list[RejectedProduct] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def written(self) -> int:
        """Rows merged into the table (inserted, updated or found unchanged)."""
        return self.inserted + self.updated + self.unchanged

    @property
    def rows_per_second(self) -> float:
        """Merged rows per second of loading."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people, e.g. ``10000 products: 10000 inserted, 0 updated, ...``."""
        return (
            f"{self.written} products: {self.inserted} inserted, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.duplicates} duplicate SKUs superseded, "
            f"{len(self.rejected)} rejected in {self.seconds:.2f}s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )


@dataclass
class _Batch:
    """Encoded COPY data of up to ``batch_size`` distinct SKUs, ready to send."""

    data: bytes
    rows: int
    #: Input positions covered so far (for the progress bar).
    consumed: int


def _batches(products: Iterable[Product], batch_size: int, result: LoadResult) -> Iterator[_Batch]:
    """Validated, encoded batches (a later duplicate SKU replaces the earlier one)."""
    batch: dict[str, bytes] = {}
    position = 0
    for position, product in enumerate(products, start=1):
        try:
            row = product_row(product)
            line = copy_line(row)
        except InputError as exc:
            sku = getattr(product, "sku", "")
            result.rejected.append(RejectedProduct(position, str(sku), str(exc)))
            continue
        if row[0] in batch:
            result.duplicates += 1
            del batch[row[0]]  # re-insert so the batch keeps input order
        batch[row[0]] = line
        if len(batch) >= batch_size:
            yield _Batch(b"".join(batch.values()), len(batch), position)
            batch = {}
    if batch or position:
        yield _Batch(b"".join(batch.values()), len(batch), position)


def _prefetch(items: Iterator[_Batch], depth: int) -> Generator[_Batch, None, None]:
    """Run ``items`` in a helper thread, ``depth`` items ahead; re-raises its errors here."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def send(kind: str, value: Any) -> bool:
        """Hand over one message unless the consumer has gone away."""
        while not stop.is_set():
            try:
                handoff.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not send("item", item):
                    return
            send("done", None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consuming thread
            send("error", exc)

    thread = threading.Thread(target=produce, name="refarch-load-prepare", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=5)


def load_products(
    conn: psycopg.Connection[Any],
    products: Iterable[Product],
    *,
    batch_size: int = 50_000,
    total: int | None = None,
    progress: bool = True,
) -> LoadResult:
    """Load ``products`` into the ``products`` table (see the module docstring for semantics).

    ``total`` (default: ``len(products)`` when it has one) sizes the progress bar. Raises
    :class:`DatabaseError` when the database refuses a batch; batches before it stay loaded.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if total is None and hasattr(products, "__len__"):
        total = len(products)  # type: ignore[arg-type]
    result = LoadResult()
    started = time.monotonic()
    prepared = _prefetch(_batches(products, batch_size, result), _PREFETCH)
    with closing(prepared), tqdm(total=total, unit="rows", desc="loading products",
                                 disable=not progress, unit_scale=True) as bar:
        seen = 0
        merger = BatchMerger(conn)
        for batch in prepared:
            if batch.rows:
                try:
                    inserted, updated = merger.merge(batch.data, batch.rows)
                except psycopg.Error as exc:
                    raise DatabaseError(
                        f"loading a batch of {batch.rows} products failed (the "
                        f"{result.written} before it are loaded; re-running the load is safe): "
                        f"{str(exc).strip()}"
                    ) from exc
                result.inserted += inserted
                result.updated += updated
                result.unchanged += batch.rows - inserted - updated
            bar.update(batch.consumed - seen)
            seen = batch.consumed
    result.seconds = time.monotonic() - started
    event(log, "products_loaded", inserted=result.inserted, updated=result.updated,
          unchanged=result.unchanged, duplicates=result.duplicates,
          rejected=len(result.rejected), seconds=result.seconds,
          rows_per_second=round(result.rows_per_second))
    return result
