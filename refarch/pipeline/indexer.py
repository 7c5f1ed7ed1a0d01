"""The indexer: makes the vector index match Postgres for every product a message names.

One :meth:`IndexerWorker.step`:

1. receives a batch of messages (several receives of up to 10, so the model gets a batch
   close to its best size);
2. re-reads the current rows from Postgres (read-only role) and fetches what the index holds
   for them (version, content hash, vector);
3. plans each product with :func:`plan_batch` (a pure function): delete it (row gone), leave it
   (the index already holds this version and text, or a newer one), re-use the stored vector
   with fresh metadata (only non-text fields changed), or embed it (the text's hash changed);
4. embeds the texts that changed in one call, upserts and deletes, then acknowledges.

Why stale messages cannot win. A message only says "product N changed"; the indexer always
writes what Postgres holds *now*, never what a message carries, and it skips the write when the
index already holds the row's version or a newer one (versions come from one global sequence,
so they only grow, even across delete and re-insert). A duplicated, reordered or redriven
message therefore finds nothing to do or brings the index up to date. What remains is a race
between two indexers on the same product: messages of one product share a FIFO group, so the
queue never hands two of them to two consumers at once; a consumer only loses its exclusive
hold when its visibility timeout expires, so before writing it checks how long it has held the
batch and renews the hold (``change_visibility``), dropping products whose receipt went stale.
A process paused between that renewal and its write for longer than the visibility timeout
could still write an older row; reconcile detects and repairs that residue.

Failures. A malformed message goes to the DLQ at once. A product that fails on its own (no
text to embed, the index rejects its record) is retried with backoff and dead-lettered with its
error after ``max_receives`` receives; the rest of the batch is still indexed. A write the index
rejects as a whole (a 4xx, :class:`~refarch.errors.IndexRejectedError`) is split in halves until
the rejected record stands alone, and so is a batch that fails in any other way that is not an
outage, so only the poison product is dead-lettered, with an error naming it.

Outages are not the batch's fault. An index that cannot write (5xx, 429, refused or timed-out
connections, a full disk reported as 507) or a database that does not answer raises an error
:func:`is_outage` recognises; the worker then keeps the batch: the heartbeat goes on extending
the messages' visibility (no receive is spent, nothing is dead-lettered), and every 0.5 s,
doubling up to ``max_probe_interval``, it probes with :func:`probe_write`, a small *write* (an
index that reads fine may still refuse writes), before it tries the batch again. It lets go of
the batch only when ``stop`` is set (the messages are made visible at once) or when the hold
itself is lost (the queue was unreachable for most of a visibility timeout): then one receive
is spent, which is all an outage can cost.
Time. Every duration, deadline and timestamp comes from the worker's ``clock`` (a
:class:`~refarch.clock.Clock`, the system clock unless one is injected), so tests run the
retry, hold and backoff paths on a :class:`~refarch.fakes.FakeClock` in milliseconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from refarch.clock import SYSTEM_CLOCK, Clock
from refarch.db import products
from refarch.domain.product import StoredProduct
from refarch.domain.text import TextOf, content_hash, embedded_text, embedding_input
from refarch.domain.vectors import vector_id, vector_metadata, version_and_hash
from refarch.errors import (
    IndexRejectedError,
    IndexServiceError,
    QueueError,
    RefarchError,
    StaleReceiptError,
)
from refarch.logs import event
from refarch.pipeline.changes import MalformedMessageError, ProductChange
from refarch.queue.port import MAX_BATCH, Queue, ReceivedMessage

log = logging.getLogger("refarch.pipeline.indexer")

#: Ids per delete or fetch request.
ID_CHUNK = 500
#: Times a batch may fail with an outage error right after a write probe succeeded before the
#: batch is taken to be the cause and bisected (see IndexerWorker._hold_through_outages).
OUTAGE_RETRIES = 3
#: Where :func:`probe_write` writes (never the products' namespace: counts stay exact).
PROBE_NAMESPACE = "refarch-indexer-probe"
#: The id of the one record :func:`probe_write` writes and deletes again.
PROBE_ID = "write-probe"


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means a dependency is unavailable, not that the batch is bad.

    An index error that is not a rejection (5xx, 429, refused or timed-out connection, a full
    disk) and a database connection failure are outages: the same batch will succeed once the
    dependency is back, so it must not spend receives. A rejection (4xx) or anything else
    is the batch's (or a product's) own failure.
    """
    if isinstance(exc, IndexRejectedError):
        return False
    return isinstance(exc, (IndexServiceError, psycopg.OperationalError, psycopg.InterfaceError))


def probe_write(index: Any) -> None:
    """Write and delete one record in :data:`PROBE_NAMESPACE`; raises when the index cannot.

    A read-only probe (``count``) answers while writes fail (a full disk, a read-only
    replica, a write quota), which would send the worker back to burning receives.
    """
    dimension = index.stats().dimension or 1
    probe = index.in_namespace(PROBE_NAMESPACE)
    probe.upsert([(PROBE_ID, [1.0] + [0.0] * (dimension - 1), {"probe": True})])
    probe.delete([PROBE_ID])


@dataclass(frozen=True, slots=True)
class IndexedState:
    """What the index holds for a product."""

    version: int | None
    content_hash: str | None
    values: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """One vector to upsert."""

    product_id: int
    values: Sequence[float]
    metadata: dict[str, Any]


@dataclass
class BatchPlan:
    """What to do for each product of a batch (see :func:`plan_batch`)."""

    #: Rows whose text changed (or that the index lacks): embed, then upsert.
    embed: list[tuple[StoredProduct, str, str]] = field(default_factory=list)  # row, text, hash
    #: Rows whose text is unchanged but whose metadata is not: upsert the stored vector.
    reuse: list[Record] = field(default_factory=list)
    #: Products gone from Postgres that the index still holds.
    delete: list[int] = field(default_factory=list)
    #: Products the index already holds at this version (or a newer one): nothing to write.
    current: list[int] = field(default_factory=list)
    #: Products that cannot be indexed, with the reason.
    failures: dict[int, str] = field(default_factory=dict)


def plan_batch(
    product_ids: Iterable[int],
    rows: Mapping[int, StoredProduct],
    indexed: Mapping[int, IndexedState],
    text_of: TextOf,
    *,
    force: Iterable[int] = (),
) -> BatchPlan:
    """Decide, for each product, how to bring the index in line with its current row.

    ``force`` (repairs) rewrites a product whose index version differs from Postgres in either
    direction, e.g. after Postgres was restored from an older backup; otherwise an index
    version at or above the row's is left alone: the index never moves backwards.
    """
    forced = set(force)
    plan = BatchPlan()
    for pid in dict.fromkeys(product_ids):
        row = rows.get(pid)
        state = indexed.get(pid)
        if row is None:
            if state is not None:
                plan.delete.append(pid)
            else:
                plan.current.append(pid)
            continue
        if state is not None and state.version is not None:
            if state.version > row.search_version and pid not in forced:
                plan.current.append(pid)  # a newer version is already there
                continue
        try:
            text = embedded_text(row, text_of)  # a blank text raises: nothing to embed
        except RefarchError as exc:
            plan.failures[pid] = f"product {pid}: {exc}"
            continue
        text_hash = content_hash(text)
        if state is not None and state.content_hash == text_hash:
            if state.version == row.search_version:
                plan.current.append(pid)
            elif state.values is not None:
                plan.reuse.append(Record(pid, state.values, vector_metadata(row, text_hash)))
            else:
                plan.embed.append((row, text, text_hash))
            continue
        plan.embed.append((row, text, text_hash))
    return plan


def fetch_state(index: Any, product_ids: Sequence[int]) -> dict[int, IndexedState]:
    """What ``index`` holds for these products (version, text hash, vector), keyed by id."""
    found: dict[int, IndexedState] = {}
    for start in range(0, len(product_ids), ID_CHUNK):
        chunk = [vector_id(pid) for pid in product_ids[start : start + ID_CHUNK]]
        for vid, (values, metadata) in index.fetch(chunk).items():
            version, text_hash = version_and_hash(metadata)
            found[int(vid)] = IndexedState(version, text_hash, values)
    return found


def read_rows(conn: psycopg.Connection, product_ids: Sequence[int]) -> dict[int, StoredProduct]:
    """The current rows of ``product_ids`` that still exist, keyed by id."""
    return products.get_products(conn, product_ids)


@dataclass
class IndexerStepResult:
    """Counts of one step, for logs and tests."""

    received: int = 0
    products: int = 0
    embedded: int = 0
    reused: int = 0
    deleted: int = 0
    current: int = 0
    failed: int = 0
    dead_lettered: int = 0
    abandoned: int = 0
    #: Times the batch met an outage (it was held, not failed) and write probes made meanwhile.
    outages: int = 0
    probes: int = 0
    #: Messages let go unsettled because ``stop`` came during an outage (visible again at once).
    released: int = 0
    #: Times a failing group of products was split in halves to find the one that fails.
    splits: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    #: Seconds from the earliest change captured to its write, for freshness logs.
    max_lag: float | None = None


class Hold:
    """A heartbeat that keeps received messages hidden while a batch is worked on.

    Every third of the visibility timeout it extends every message's timeout. :meth:`lost`
    says which products' messages may have become visible to another consumer: a receipt the
    queue called stale, or every receipt when the last successful renewal is too old (the
    process stalled, e.g. paused, and the heartbeat could not run).

    Used as a context manager it runs :meth:`beat` on a thread of its own (started through the
    clock) while the block runs; outside one, nothing runs: tests may call :meth:`renew` directly.
    """

    def __init__(self, queue: Queue, messages: list[ReceivedMessage], visibility_timeout: float,
                 received_at: float | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.queue = queue
        self.messages = messages
        self.timeout = visibility_timeout
        self.clock = clock
        #: When the hold was last known good: the (first) receive, then each renewal.
        self.renewed_at = clock.monotonic() if received_at is None else received_at
        self.stale: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def interval(self) -> float:
        """Seconds between renewals: a third of the visibility timeout."""
        return self.timeout / 3

    def __enter__(self) -> Hold:
        self._thread = self.clock.start_thread(self.beat, "indexer-heartbeat")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def beat(self) -> None:
        """Renew every :attr:`interval` until the ``with`` block ends (the heartbeat's body)."""
        while not self.clock.wait(self._stop, self.interval):
            self.renew()

    def renew(self) -> None:
        """Extend every message's visibility timeout now."""
        started = self.clock.monotonic()
        ok = True
        for message in self.messages:
            if message.receipt_handle in self.stale:
                continue
            try:
                self.queue.change_visibility(message.receipt_handle, self.timeout)
            except StaleReceiptError:
                self.stale.add(message.receipt_handle)
            except QueueError:
                ok = False  # the queue is unreachable: the hold is not renewed
        if ok:
            self.renewed_at = started

    def lost(self, by_product: Mapping[int, Sequence[ReceivedMessage]]) -> set[int]:
        """Products whose messages may be held by someone else now (do not write them)."""
        if self.clock.monotonic() - self.renewed_at > self.timeout * 0.8:
            return set(by_product)
        return {pid for pid, messages in by_product.items()
                if any(m.receipt_handle in self.stale for m in messages)}


class IndexerWorker:
    """One indexer: receives, plans, embeds, writes, acknowledges. ``step`` is the unit of work.

    ``index`` is a :class:`~refarch.index.port.VectorIndex`; ``embedder`` has
    ``encode(texts, batch_size=None, progress=False)``; ``connect`` opens an autocommit
    connection that may read ``products``; ``clock`` times holds, backoffs and freshness.
    """

    def __init__(
        self,
        queue: Queue,
        index: Any,
        embedder: Any,
        connect: Callable[[], psycopg.Connection],
        *,
        text_of: TextOf,
        batch_size: int = 64,
        visibility_timeout: float = 60.0,
        max_receives: int | None = None,
        on_close: Sequence[Callable[[], None]] = (),
        clock: Clock = SYSTEM_CLOCK,
        max_probe_interval: float = 30.0,
    ) -> None:
        self.queue = queue
        #: Closers of parts this worker was given to own (see refarch.bootstrap.make_indexer).
        self._on_close = list(on_close)
        self.index = index
        self.embedder = embedder
        self._connect = connect
        self._conn: psycopg.Connection | None = None
        self.text_of = text_of
        self.batch_size = batch_size
        self.visibility_timeout = float(visibility_timeout)
        self.max_receives = max_receives if max_receives is not None else queue.max_receives
        self.clock = clock
        #: The longest wait between write probes while a batch is held through an outage.
        self.max_probe_interval = float(max_probe_interval)
        self._received_at = clock.monotonic()

    # -- connections ----------------------------------------------------------------------

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the database connection, and the parts given with ``on_close``; a queue or
        index passed in without it belongs to the caller."""
        self._drop_connection()
        closers, self._on_close = self._on_close, []
        for close in closers:
            close()

    def healthy(self) -> bool:
        """Whether Postgres answers and the index accepts a write (:func:`probe_write`);
        checked before receiving after a failure, and while a batch is held through an outage."""
        try:
            self._db().execute("SELECT 1")
            probe_write(self.index)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            self._drop_connection()
            return False

    # -- the step -------------------------------------------------------------------------

    def receive_batch(self, wait_seconds: float = 0.0) -> list[ReceivedMessage]:
        """Receive up to ``batch_size`` messages with as many receives as it takes."""
        messages: list[ReceivedMessage] = []
        self._received_at = self.clock.monotonic()
        while len(messages) < self.batch_size:
            want = min(MAX_BATCH, self.batch_size - len(messages))
            if not messages:
                self._received_at = self.clock.monotonic()  # the hold of the first message starts
            got = self.queue.receive(
                want,
                visibility_timeout=self.visibility_timeout,
                wait_seconds=wait_seconds if not messages else 0.0,
            )
            messages.extend(got)
            if len(got) < want:
                break
        return messages

    def step(self, wait_seconds: float = 0.0, stop: threading.Event | None = None) -> IndexerStepResult:
        """Handle one batch; returns its counts (``received == 0``: the queue was empty).

        Through an outage the batch is held (see the module docstring) until the index writes
        again, or until ``stop`` is set: then the messages still held are made visible again
        (``released``) and the step returns. Without ``stop`` it holds until the outage ends or
        the hold is lost; a lost hold raises the outage's error, nothing dead-lettered.
        """
        started = self.clock.monotonic()
        result = IndexerStepResult()
        messages = self.receive_batch(wait_seconds)
        result.received = len(messages)
        if not messages:
            return result
        pending: dict[int, list[tuple[ReceivedMessage, ProductChange]]] = {}
        for message in messages:
            try:
                change = ProductChange.from_json(message.body)
            except MalformedMessageError as exc:
                self._dead_letter([message], f"malformed message: {exc}")
                result.dead_lettered += 1
                continue
            pending.setdefault(change.product_id, []).append((message, change))
        result.products = len(pending)
        if pending:
            with self.hold([m for items in pending.values() for m, _ in items]) as hold:
                self._hold_through_outages(pending, hold, result, stop or threading.Event())
        result.seconds = self.clock.monotonic() - started
        return result

    def _hold_through_outages(self, pending: dict[int, list[tuple[ReceivedMessage, ProductChange]]],
                              hold: Hold, result: IndexerStepResult, stop: threading.Event) -> None:
        """Settle ``pending``; on an outage keep the batch held and probe until writes work.

        When the probe succeeds but the batch fails with an "outage" again, ``OUTAGE_RETRIES``
        times in a row, the batch itself is the likelier cause (a record that makes the server
        answer 500): it is then settled treating those errors as failures, bisected like any
        other, so one such record cannot hold its batch-mates (and the worker) forever.
        """
        outage_started: float | None = None
        probed_ok = 0
        while True:
            try:
                self._settle(pending, hold, result, isolate_outages=probed_ok >= OUTAGE_RETRIES)
            except Exception as exc:
                if not is_outage(exc):
                    raise  # _settle isolates failures; this is a bug: the messages come back later
                error = str(exc).strip() or repr(exc)
                if outage_started is None:
                    outage_started = self.clock.monotonic()
                    event(log, "indexer_outage_holding", level=logging.WARNING,
                          products=len(pending), error=error)
                result.outages += 1
                self._drop_connection()
                if not self._wait_until_writable(pending, hold, result, stop, exc):
                    return
                probed_ok += 1
                continue
            if outage_started is not None:
                event(log, "indexer_outage_over", products=result.products,
                      held_seconds=self.clock.monotonic() - outage_started)
            return

    def _wait_until_writable(self, pending: dict[int, list[tuple[ReceivedMessage, ProductChange]]],
                             hold: Hold, result: IndexerStepResult, stop: threading.Event,
                             error: Exception) -> bool:
        """Probe (0.5 s, doubling up to ``max_probe_interval``) until the index accepts a write
        and Postgres answers: True. On ``stop``, release the held messages: False. A hold lost
        meanwhile (the queue unreachable) re-raises ``error``: the messages come back on their own."""
        delay = 0.5
        while True:
            if self.clock.wait(stop, delay):
                handles = [m.receipt_handle for items in pending.values() for m, _ in items]
                for handle in handles:
                    try:
                        self.queue.change_visibility(handle, 0)
                    except QueueError:
                        pass  # it comes back after its visibility timeout anyway
                result.released += len(handles)
                event(log, "indexer_outage_released", level=logging.WARNING, messages=len(handles))
                return False
            delay = min(delay * 2, self.max_probe_interval)
            result.probes += 1
            if hold.lost({pid: [m for m, _ in items] for pid, items in pending.items()}):
                event(log, "indexer_outage_hold_lost", level=logging.WARNING, products=len(pending))
                raise error
            if self.healthy():
                return True

    def _settle(self, pending: dict[int, list[tuple[ReceivedMessage, ProductChange]]],
                hold: Hold, result: IndexerStepResult, *, isolate_outages: bool = False) -> None:
        """Process ``pending``, removing each product once it is settled (acknowledged, retried
        later, dead-lettered or abandoned). An outage propagates with the unsettled products
        still in ``pending``. Any other failure splits the failing group in halves until the
        product that fails stands alone; it alone is retried later or dead-lettered, named.
        With ``isolate_outages`` an outage error is treated the same way."""
        groups = [list(pending)]
        while groups:
            ids = groups.pop()
            part = {pid: pending[pid] for pid in ids}
            try:
                self._process(part, hold, result)
            except Exception as exc:
                if is_outage(exc) and not isolate_outages:
                    raise
                if len(ids) > 1:
                    middle = len(ids) // 2
                    groups += [ids[middle:], ids[:middle]]  # the first half next
                    result.splits += 1
                    continue
                (pid,) = ids
                result.failed += 1
                result.dead_lettered += self._retry_or_dead_letter(
                    [m for m, _ in part[pid]], f"product {pid}: indexing failed: {exc!r}")
            for pid in ids:
                del pending[pid]

    def _process(
        self,
        by_product: dict[int, list[tuple[ReceivedMessage, ProductChange]]],
        hold: Hold,
        result: IndexerStepResult,
    ) -> None:
        ids = list(by_product)
        rows = read_rows(self._db(), ids)
        indexed = self.fetch_state(ids)
        forced = [pid for pid, items in by_product.items() if any(c.source == "repair" for _, c in items)]
        plan = plan_batch(ids, rows, indexed, self.text_of, force=forced)

        records = list(plan.reuse)
        failures = dict(plan.failures)
        if plan.embed:
            embed_started = self.clock.monotonic()
            records.extend(self._embed(plan.embed, failures))
            result.embed_seconds += self.clock.monotonic() - embed_started

        # Drop products whose hold we may have lost: another indexer may be working on them.
        stale = hold.lost({pid: [m for m, _ in items] for pid, items in by_product.items()})
        if stale:
            event(log, "indexer_receipts_expired", level=logging.WARNING, products=len(stale))
        records = [r for r in records if r.product_id not in stale]
        deletes = [pid for pid in plan.delete if pid not in stale]

        failures.update(self._upsert(records))
        self._delete_vectors(deletes)

        result.embedded += sum(1 for r, _, _ in plan.embed if r.id not in failures and r.id not in stale)
        result.reused += sum(
            1 for r in plan.reuse if r.product_id not in failures and r.product_id not in stale
        )
        result.deleted += len(deletes)
        result.current += len(plan.current)
        result.failed += len(failures)
        result.abandoned += len(stale)

        done_handles: list[str] = []
        changed_at: list[datetime] = []
        for pid, items in by_product.items():
            if pid in stale:
                continue
            if pid in failures:
                result.dead_lettered += self._retry_or_dead_letter([m for m, _ in items], failures[pid])
                continue
            done_handles.extend(m.receipt_handle for m, _ in items)
            changed_at.extend(c.changed_at for _, c in items if c.changed_at is not None)
        self._ack(done_handles)
        if changed_at:
            now = self.clock.now()
            lag = max((now - t).total_seconds() for t in changed_at)
            result.max_lag = lag if result.max_lag is None else max(result.max_lag, lag)

    # -- index I/O ------------------------------------------------------------------------

    def fetch_state(self, product_ids: Sequence[int]) -> dict[int, IndexedState]:
        """What the index holds for these products (version, hash, vector)."""
        return fetch_state(self.index, product_ids)

    def _embed(
        self, items: list[tuple[StoredProduct, str, str]], failures: dict[int, str]
    ) -> list[Record]:
        texts = [embedding_input(text) for _, text, _ in items]
        try:
            vectors = self.embedder.encode(texts, progress=False)
            pairs = list(zip(items, vectors, strict=False))
        except RefarchError:
            # Isolate the text(s) the model refuses; embed the others one by one.
            pairs = []
            for item in items:
                try:
                    pairs.append((item, self.embedder.encode([embedding_input(item[1])], progress=False)[0]))
                except RefarchError as exc:
                    failures[item[0].id] = f"product {item[0].id}: {exc}"
        return [
            Record(row.id, [float(x) for x in vector], vector_metadata(row, text_hash))
            for (row, _, text_hash), vector in pairs
        ]

    def _upsert(self, records: list[Record]) -> dict[int, str]:
        """Upsert ``records`` (the port splits them into requests); when the index rejects
        them, split them in halves until each rejected record stands alone (a batch of n with
        one poison costs about 2 log2 n requests). Returns per-product failures; raises on
        anything but a rejection (an outage: the caller holds the batch and retries it).
        Rewriting records already written is harmless.
        """
        failures: dict[int, str] = {}
        groups = [records] if records else []
        while groups:
            group = groups.pop()
            try:
                self.index.upsert([(vector_id(r.product_id), r.values, r.metadata) for r in group])
            except IndexRejectedError as exc:
                if len(group) > 1:
                    middle = len(group) // 2
                    groups += [group[middle:], group[:middle]]
                    continue
                pid = group[0].product_id
                failures[pid] = f"product {pid}: index rejected the record: {exc}"
        return failures

    def _delete_vectors(self, product_ids: list[int]) -> None:
        if product_ids:
            self.index.delete([vector_id(pid) for pid in product_ids])

    # -- queue I/O ------------------------------------------------------------------------

    def hold(self, messages: list[ReceivedMessage]) -> Hold:
        """Keep ``messages`` hidden while they are worked on (a heartbeat thread)."""
        return Hold(self.queue, messages, self.visibility_timeout, self._received_at, clock=self.clock)

    def _ack(self, handles: list[str]) -> None:
        for start in range(0, len(handles), MAX_BATCH):
            try:
                self.queue.delete(handles[start : start + MAX_BATCH])
            except QueueError as exc:
                # The write is done and idempotent; a message that comes back finds nothing to do.
                event(log, "indexer_ack_failed", level=logging.WARNING, error=str(exc))

    def _dead_letter(self, messages: list[ReceivedMessage], error: str) -> None:
        for message in messages:
            try:
                self.queue.dead_letter(message, error)
            except QueueError as exc:
                event(log, "indexer_dead_letter_failed", level=logging.WARNING, error=str(exc))
        event(log, "indexer_dead_lettered", level=logging.WARNING, count=len(messages), error=error)

    def _retry_or_dead_letter(self, messages: list[ReceivedMessage], error: str,
                              backoff: bool = True) -> int:
        """Dead-letter messages on their last receive (with ``error``); with ``backoff``,
        make the others visible again after 1, 2, 4 ... seconds (else after the timeout)."""
        last = [m for m in messages if m.receive_count >= self.max_receives]
        if last:
            self._dead_letter(last, error)
        for message in messages:
            if message in last or not backoff:
                continue
            delay = min(self.visibility_timeout, 2.0 ** max(0, message.receive_count - 1))
            try:
                self.queue.change_visibility(message.receipt_handle, delay)
            except QueueError:
                pass  # it comes back after its visibility timeout anyway
        if len(last) < len(messages):
            event(log, "indexer_retry_later", level=logging.WARNING,
                  count=len(messages) - len(last), error=error)
        return len(last)


def run(
    worker: IndexerWorker,
    *,
    stop: threading.Event,
    wait_seconds: float = 1.0,
    max_backoff: float = 30.0,
) -> None:
    """Step until ``stop`` is set; after a failure, wait until Postgres answers and the index
    accepts a write (:meth:`IndexerWorker.healthy`).

    ``stop`` is checked between steps, so SIGTERM (which sets it) lets the batch in hand finish
    and be acknowledged before the process exits; a batch held through an outage is released
    instead (visible again at once, nothing dead-lettered). The waits between health checks
    (0.5 s, doubling up to ``max_backoff``, back to 0.5 s after a step succeeds) are on the
    worker's clock.
    """
    backoff = 0.5
    while not stop.is_set():
        try:
            result = worker.step(wait_seconds=wait_seconds, stop=stop)
        except Exception as exc:  # noqa: BLE001 - the loop survives anything a step throws
            event(log, "indexer_error", level=logging.WARNING, error=str(exc).strip() or repr(exc))
            while not worker.clock.wait(stop, backoff) and not worker.healthy():
                backoff = min(backoff * 2, max_backoff)
            continue
        backoff = 0.5
        if result.received:
            event(
                log, "indexer_batch", received=result.received, products=result.products,
                embedded=result.embedded, reused=result.reused, deleted=result.deleted,
                current=result.current, failed=result.failed, dead_lettered=result.dead_lettered,
                outages=result.outages, probes=result.probes, released=result.released,
                splits=result.splits, seconds=result.seconds, embed_seconds=result.embed_seconds,
                max_lag=result.max_lag if result.max_lag is not None else "",
            )
    worker.close()
    event(log, "indexer_stopped")
