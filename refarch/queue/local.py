"""The local queue: SQS FIFO semantics on three Postgres tables.

Why a plain ``FOR UPDATE SKIP LOCKED`` table and not pgmq: pgmq is not packaged for Debian
(``apt-cache search pgmq`` finds nothing; the PyPI ``pgmq`` packages are only clients of the
extension), so it would have to be built or loaded from its SQL by hand on every machine. And
pgmq has no FIFO message groups, no deduplication ids and no dead-letter queue: those are the
SQS semantics the pipeline relies on, so they would be rebuilt on top of it anyway. Three small
tables (created by migration ``0003_queue.sql``) carry all of it in about as much SQL as the
wrapper would need, inside the database the local stack already runs, with nothing to install.

How the SQS semantics map onto the tables:

* **Order and groups.** ``seq`` (an identity) is the send order. A receive locks, oldest first
  and with ``SKIP LOCKED``, the *heads* of deliverable groups: the oldest message of a group
  that has no message in flight. Only a head can be claimed, so two consumers can never take
  two messages of one group (the second consumer skips the locked head, and the message
  behind it is not a head). Like SQS, a receive then fills up with the messages behind each
  head, in order, before moving on to the next group.
* **Visibility.** A message is in flight while ``visible_at`` is in the future; every receive
  stamps a new ``receipt_handle``. Delete, extend and dead-letter accept only the current
  handle of a message still in flight (an expired handle fails, as on SQS FIFO), so a slow
  consumer cannot delete a message another consumer now holds.
* **Dead letters.** A receive that would deliver a message for the ``max_receives + 1``-th time
  moves it to ``queue_dead_letters`` instead (SQS's redrive policy); ``dead_letter`` moves one
  at once with its error. Either way its group is unblocked; a receive that moved some looks
  again, so it returns what became deliverable behind them.
* **Deduplication.** ``queue_dedup`` remembers each deduplication id for 5 minutes, also after
  the message is deleted (as SQS does).
* **Retention.** As on SQS, a message is dropped ``retention_seconds`` after it was sent (4
  days by default) and a dead letter ``dlq_retention_seconds`` after it was dead-lettered (14
  days; a FIFO DLQ on SQS also counts from the move). Expired rows are deleted by
  :meth:`PostgresQueue.expire`, which a consumer's receive runs at most once a minute, so an
  expired message may still be delivered for up to a minute (SQS also expires asynchronously);
  each drop is counted in a ``queue_expired`` warning. ``ages()`` gives the oldest ages, which
  ``refarch status`` compares with the retention to warn before anything expires.
* **Long polling.** Senders ``NOTIFY refarch_queue`` (payload: the queue name) in the sending
  transaction; a waiting receive ``LISTEN``s, and also wakes when the next hidden message's
  visibility ends and at least every ``poll_interval`` seconds. NOTIFY is only a wake-up: the
  rows are the queue.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool, PoolTimeout

from refarch.errors import (
    ConfigError,
    InputError,
    QueueBatchError,
    QueueError,
    StaleReceiptError,
)
from refarch.logs import event
from refarch.queue.port import (
    MAX_BATCH,
    DeadLetter,
    OutgoingMessage,
    QueueStats,
    ReceivedMessage,
)
from refarch.queue.validation import (
    DEDUP_WINDOW_SECONDS,
    DEFAULT_DLQ_RETENTION_SECONDS,
    DEFAULT_RETENTION_SECONDS,
    check_limit,
    check_max_messages,
    check_max_receives,
    check_queue_name,
    check_receipt_handles,
    check_retention,
    check_send_batch,
    check_timeout,
    check_wait,
    clean_error,
)

log = logging.getLogger(__name__)

#: The NOTIFY channel senders signal on; the payload is the queue name.
NOTIFY_CHANNEL = "refarch_queue"
#: How often expired deduplication ids, messages and dead letters are swept, per queue
#: object (seconds).
_SWEEP_EVERY = 60.0

_SEND = """
WITH input AS (
    SELECT * FROM unnest(%(message_ids)s::uuid[], %(group_ids)s::text[],
                         %(dedup_ids)s::text[], %(bodies)s::text[])
        WITH ORDINALITY AS i(message_id, group_id, dedup_id, body, ord)
), fresh AS (
    INSERT INTO queue_dedup AS d (queue, dedup_id, message_id, expires_at)
    SELECT %(queue)s, dedup_id, message_id, now() + make_interval(secs => %(window)s)
    FROM input
    ON CONFLICT (queue, dedup_id) DO UPDATE
        SET message_id = EXCLUDED.message_id, expires_at = EXCLUDED.expires_at
        WHERE d.expires_at <= now()
    RETURNING d.dedup_id
)
INSERT INTO queue_messages (queue, message_id, group_id, dedup_id, body)
SELECT %(queue)s, i.message_id, i.group_id, i.dedup_id, i.body
FROM input i JOIN fresh f ON f.dedup_id = i.dedup_id
ORDER BY i.ord
RETURNING message_id
"""

# The heads of deliverable groups, oldest first: messages with no older message in their group
# (so they are its head) and no message of the group in flight, leaving out the groups this
# receive already delivers from (``served``). SKIP LOCKED passes over heads
# another receive is claiming right now. OFFSET 0 keeps the NOT EXISTS a per-row probe of the
# (queue, group_id, seq) index: flattened into an anti-join it would scan the whole table.
_LOCK_HEADS = """
SELECT m.seq, m.group_id
FROM queue_messages m
WHERE m.queue = %(queue)s
  AND m.visible_at <= now()
  AND m.group_id <> ALL(%(served)s::text[])
  AND NOT EXISTS (SELECT 1 FROM queue_messages o
                  WHERE o.queue = m.queue AND o.group_id = m.group_id
                    AND (o.seq < m.seq OR o.visible_at > now())
                  OFFSET 0)
ORDER BY m.seq
LIMIT %(limit)s
FOR UPDATE OF m SKIP LOCKED
"""

# Each claimed group's messages in order (its head first), to fill the batch from.
_GROUP_MESSAGES = """
SELECT x.seq, x.message_id, x.group_id, x.body, x.sent_at, x.receive_count
FROM unnest(%(group_ids)s::text[]) WITH ORDINALITY AS g(group_id, ord)
CROSS JOIN LATERAL (
    SELECT m.seq, m.message_id, m.group_id, m.body, m.sent_at, m.receive_count
    FROM queue_messages m
    WHERE m.queue = %(queue)s AND m.group_id = g.group_id
    ORDER BY m.seq
    LIMIT %(limit)s
    FOR UPDATE OF m
) x
ORDER BY g.ord, x.seq
"""


class _Candidate(NamedTuple):
    """One row of ``_GROUP_MESSAGES``: a message that may be delivered."""

    seq: int
    message_id: uuid.UUID
    group_id: str
    body: str
    sent_at: datetime
    receive_count: int


_MARK_RECEIVED = """
UPDATE queue_messages
SET receive_count = receive_count + 1,
    visible_at = now() + make_interval(secs => %(timeout)s),
    receipt_handle = gen_random_uuid()
WHERE seq = ANY(%(seqs)s::bigint[])
RETURNING seq, receipt_handle::text, receive_count
"""

_MOVE_EXHAUSTED = """
WITH moved AS (
    DELETE FROM queue_messages WHERE seq = ANY(%(seqs)s::bigint[]) RETURNING *
)
INSERT INTO queue_dead_letters
    (queue, message_id, group_id, dedup_id, body, sent_at, receive_count, error)
SELECT queue, message_id, group_id, dedup_id, body, sent_at, receive_count,
       format('received %%s times without a delete (max_receives=%%s)',
              receive_count, %(max_receives)s::int)
FROM moved ORDER BY seq
"""

_DELETE = """
DELETE FROM queue_messages
WHERE queue = %(queue)s AND receipt_handle = ANY(%(handles)s::uuid[]) AND visible_at > now()
RETURNING receipt_handle::text
"""

_CHANGE_VISIBILITY = """
UPDATE queue_messages SET visible_at = now() + make_interval(secs => %(timeout)s)
WHERE queue = %(queue)s AND receipt_handle = %(handle)s AND visible_at > now()
"""

_DEAD_LETTER = """
WITH moved AS (
    DELETE FROM queue_messages
    WHERE queue = %(queue)s AND receipt_handle = %(handle)s AND visible_at > now()
    RETURNING *
)
INSERT INTO queue_dead_letters
    (queue, message_id, group_id, dedup_id, body, sent_at, receive_count, error)
SELECT queue, message_id, group_id, dedup_id, body, sent_at, receive_count, %(error)s
FROM moved
RETURNING message_id
"""

_DEAD_LETTERS = """
SELECT message_id::text, body, group_id, receive_count, error, dead_at
FROM queue_dead_letters WHERE queue = %(queue)s ORDER BY seq LIMIT %(limit)s
"""

# Redriven messages go to the back of the queue with a fresh receive count; they keep their
# message id (it is the same message) but count as sent now, as a resend on SQS would.
_REDRIVE = """
WITH moved AS (
    DELETE FROM queue_dead_letters
    WHERE seq IN (SELECT seq FROM queue_dead_letters WHERE queue = %(queue)s
                  ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    RETURNING *
)
INSERT INTO queue_messages (queue, message_id, group_id, dedup_id, body)
SELECT queue, message_id, group_id, dedup_id, body FROM moved ORDER BY seq
RETURNING message_id
"""

_STATS = """
SELECT count(*) FILTER (WHERE visible_at <= now()),
       count(*) FILTER (WHERE visible_at > now()),
       (SELECT count(*) FROM queue_dead_letters WHERE queue = %(queue)s)
FROM queue_messages WHERE queue = %(queue)s
"""

# Messages past their retention (counted from the send), dead letters past theirs (counted
# from the move to the DLQ, as on an SQS FIFO DLQ). In flight or not: SQS drops both.
_EXPIRE = """
WITH messages AS (
    DELETE FROM queue_messages
    WHERE queue = %(queue)s AND sent_at <= now() - make_interval(secs => %(retention)s)
    RETURNING 1
), dead AS (
    DELETE FROM queue_dead_letters
    WHERE queue = %(queue)s AND dead_at <= now() - make_interval(secs => %(dlq_retention)s)
    RETURNING 1
)
SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM dead)
"""

_AGES = """
SELECT extract(epoch FROM now() - (SELECT min(sent_at) FROM queue_messages
                                   WHERE queue = %(queue)s))::float8,
       extract(epoch FROM now() - (SELECT min(dead_at) FROM queue_dead_letters
                                   WHERE queue = %(queue)s))::float8
"""

_NEXT_VISIBLE_IN = """
SELECT extract(epoch FROM min(visible_at) - now())::float8
FROM queue_messages WHERE queue = %(queue)s AND visible_at > now()
"""


class Expired(NamedTuple):
    """What one :meth:`PostgresQueue.expire` dropped."""

    messages: int
    dead_letters: int


class QueueAges(NamedTuple):
    """Seconds since the oldest message was sent and the oldest dead letter was dead-lettered
    (``None`` when there is none): what retention is measured against."""

    oldest_message_seconds: float | None
    oldest_dead_letter_seconds: float | None


class PostgresQueue:
    """A queue with SQS FIFO semantics stored in Postgres (see the module docstring).

    ``conninfo_or_pool`` is a libpq connection string/URL (the queue then owns a small
    connection pool, opened on first use and closed by :meth:`close`) or an open
    :class:`psycopg_pool.ConnectionPool` the caller owns. Several queues share the tables,
    told apart by ``name``. The tables come from the migrations (``refarch db migrate``).
    ``retention_seconds`` and ``dlq_retention_seconds`` bound how long messages and dead
    letters are kept (60 s to 14 days, as on SQS; see the module docstring).
    """

    def __init__(
        self,
        conninfo_or_pool: str | ConnectionPool,
        name: str = "products",
        max_receives: int = 5,
        visibility_timeout: float = 30.0,
        *,
        poll_interval: float = 1.0,
        max_connections: int = 8,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        dlq_retention_seconds: float = DEFAULT_DLQ_RETENTION_SECONDS,
    ) -> None:
        self.name = check_queue_name(name)
        self.max_receives = check_max_receives(max_receives)
        self.visibility_timeout = check_timeout(visibility_timeout)
        self.retention_seconds = check_retention(retention_seconds)
        self.dlq_retention_seconds = check_retention(dlq_retention_seconds,
                                                     "dlq_retention_seconds")
        if not poll_interval > 0:
            raise InputError(
                f"poll_interval={poll_interval!r} must be a positive number of seconds"
            )
        self.poll_interval = float(poll_interval)
        if isinstance(conninfo_or_pool, ConnectionPool):
            self._pool: ConnectionPool | None = conninfo_or_pool
            self._conninfo: str | None = None
        elif isinstance(conninfo_or_pool, str) and conninfo_or_pool:
            self._pool = None
            self._conninfo = conninfo_or_pool
        else:
            raise ConfigError(
                "PostgresQueue needs a libpq connection string or a psycopg_pool.ConnectionPool, "
                f"got {conninfo_or_pool!r}"
            )
        self._max_connections = max_connections
        self._pool_lock = threading.Lock()
        self._last_sweep = 0.0
        self._last_expiry: float | None = None

    # -- connections ---------------------------------------------------------------------

    def _get_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                assert self._conninfo is not None
                # Connect once directly first: a wrong address fails now with the server's
                # own message, instead of as a pool timeout half a minute later.
                try:
                    psycopg.connect(self._conninfo, connect_timeout=10).close()
                except psycopg.Error as exc:
                    raise QueueError(f"cannot connect to the queue database: {exc}") from exc
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self._max_connections,
                    kwargs={"autocommit": True},
                    # A connection left broken by a database restart is replaced on checkout,
                    # so the queue carries on after one (the pipeline's fault tests do that).
                    check=ConnectionPool.check_connection,
                    name=f"refarch-queue-{self.name}",
                    open=True,
                )
            return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._get_pool().connection() as conn:
                # Every statement here is its own transaction unless wrapped in
                # conn.transaction(), and a LISTEN only hears NOTIFYs outside a transaction:
                # so work in autocommit, also on a caller's pool that is not (then restore it).
                was_autocommit = conn.autocommit
                if not was_autocommit:
                    conn.autocommit = True
                try:
                    yield conn
                finally:
                    if not was_autocommit and not conn.closed:
                        conn.autocommit = False
        except psycopg.errors.UndefinedTable as exc:
            raise QueueError(
                "the local queue's tables are missing: run `refarch db migrate` "
                f"(migration 0003_queue.sql creates them) ({exc.diag.message_primary})"
            ) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise QueueError(
                f"the database role may not do this on queue {self.name!r} "
                f"({exc.diag.message_primary}); migration 0003_queue.sql grants the relay role "
                "sending and the indexer role receiving, deleting and dead-lettering; "
                "redrive needs the owner"
            ) from exc
        except PoolTimeout as exc:
            raise QueueError(f"no database connection for queue {self.name!r}: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise QueueError(f"the queue database failed: {exc}") from exc

    @contextmanager
    def _consumer_transaction(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """A transaction for receive, delete, visibility and dead-letter changes, committed
        without waiting for the WAL flush: a database crash may forget the last moments of
        them, which at-least-once delivery allows (the message is simply delivered again).
        Sends and redrives stay fully durable."""
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            yield

    def close(self) -> None:
        """Close the connection pool if this queue opened it (a caller's pool stays open)."""
        with self._pool_lock:
            if self._conninfo is not None and self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> PostgresQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresQueue(name={self.name!r}, max_receives={self.max_receives})"

    # -- sending -------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Send 1 to 10 messages in one transaction; returns their message ids, in order.

        A message whose ``dedup_id`` was sent in the last 5 minutes (or earlier in the same
        batch) is accepted but not enqueued again; its id is the original message's id.
        """
        check_send_batch(messages)
        # A dedup id repeated within the batch is a duplicate of its first occurrence.
        new_ids: dict[str, uuid.UUID] = {}
        unique: list[OutgoingMessage] = []
        for message in messages:
            if message.dedup_id not in new_ids:
                new_ids[message.dedup_id] = uuid.uuid4()
                unique.append(message)
        params = {
            "queue": self.name,
            "window": DEDUP_WINDOW_SECONDS,
            "message_ids": [new_ids[m.dedup_id] for m in unique],
            "group_ids": [m.group_id for m in unique],
            "dedup_ids": [m.dedup_id for m in unique],
            "bodies": [m.body for m in unique],
        }
        with self._connection() as conn:
            with conn.transaction():
                inserted = conn.execute(_SEND, params).fetchall()
                if inserted:
                    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, self.name))
            ids = {m.dedup_id: str(new_ids[m.dedup_id]) for m in unique}
            duplicates = len(unique) - len(inserted)
            if duplicates:
                # Ids sent before (within the window) keep their first message's id.
                rows = conn.execute(
                    "SELECT dedup_id, message_id::text FROM queue_dedup"
                    " WHERE queue = %s AND dedup_id = ANY(%s::text[])",
                    (self.name, [m.dedup_id for m in unique]),
                ).fetchall()
                ids.update(dict(rows))
            self._sweep_dedup(conn)
        event(log, "queue_sent", logging.DEBUG, queue=self.name, count=len(inserted),
              duplicates=len(messages) - len(inserted))
        return [ids[m.dedup_id] for m in messages]

    def _sweep_dedup(self, conn: psycopg.Connection[Any]) -> None:
        now = time.monotonic()
        if now - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = now
        conn.execute(
            "DELETE FROM queue_dedup WHERE queue = %s AND expires_at < now()", (self.name,)
        )

    # -- receiving -----------------------------------------------------------------------

    def receive(
        self,
        max_messages: int = MAX_BATCH,
        *,
        visibility_timeout: float | None = None,
        wait_seconds: float = 0.0,
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` (1 to 10), hiding them for the visibility timeout.

        With ``wait_seconds`` > 0, waits up to that long (at most 20 s) for a message to
        arrive or become visible, waking on the senders' NOTIFY.
        """
        limit = check_max_messages(max_messages)
        timeout = (
            self.visibility_timeout
            if visibility_timeout is None
            else check_timeout(visibility_timeout)
        )
        wait = check_wait(wait_seconds)
        with self._connection() as conn:
            self._expire_if_due(conn)
            if wait == 0:
                return self._receive_once(conn, limit, timeout)
            deadline = time.monotonic() + wait
            # LISTEN before the first attempt: a send between an empty attempt and the wait
            # then still wakes us.
            self._set_listening(conn, True)
            try:
                while True:
                    received = self._receive_once(conn, limit, timeout)
                    remaining = deadline - time.monotonic()
                    if received or remaining <= 0:
                        return received
                    nap = min(remaining, self.poll_interval, self._next_visible_in(conn))
                    for _ in conn.notifies(timeout=max(nap, 0.0), stop_after=1):
                        pass
            finally:
                if not conn.closed:  # a dropped connection is discarded by the pool anyway
                    self._set_listening(conn, False)

    def _expire_if_due(self, conn: psycopg.Connection[Any]) -> None:
        now = time.monotonic()
        if self._last_expiry is not None and now - self._last_expiry < _SWEEP_EVERY:
            return
        self._last_expiry = now
        try:
            self._expire(conn)
        except psycopg.errors.InsufficientPrivilege as exc:
            # Expiry must never stop delivery: report it and carry on (the statement failed
            # alone, in autocommit, so the connection is fine).
            event(log, "queue_expiry_refused", level=logging.WARNING, queue=self.name,
                  error=exc.diag.message_primary,
                  fix="grant DELETE on queue_messages and queue_dead_letters (migration 0007)")

    def _set_listening(self, conn: psycopg.Connection[Any], on: bool) -> None:
        statement = "LISTEN {}" if on else "UNLISTEN {}"
        conn.execute(sql.SQL(statement).format(sql.Identifier(NOTIFY_CHANNEL)))

    def _next_visible_in(self, conn: psycopg.Connection[Any]) -> float:
        row = conn.execute(_NEXT_VISIBLE_IN, {"queue": self.name}).fetchone()
        seconds = row[0] if row else None
        # A little slack so the message is visible by the time we look again.
        return float("inf") if seconds is None else max(seconds, 0.0) + 0.005

    def _receive_once(
        self, conn: psycopg.Connection[Any], limit: int, timeout: float
    ) -> list[ReceivedMessage]:
        with self._consumer_transaction(conn):
            deliver: list[_Candidate] = []
            exhausted: list[int] = []
            served: list[str] = []
            # Moving exhausted heads to the DLQ makes the messages behind them (and other
            # groups' heads) deliverable: look again until the batch is full or nothing moved,
            # so a receive never returns empty while a message is deliverable.
            while len(deliver) < limit:
                moved = self._claim(conn, limit - len(deliver), served, deliver)
                if not moved:
                    break
                exhausted += moved
                served = sorted({row.group_id for row in deliver})
            if not deliver and not exhausted:
                return []
            marked: dict[int, tuple[str, int]] = {}
            if deliver:
                marked = {
                    seq: (handle, count)
                    for seq, handle, count in conn.execute(
                        _MARK_RECEIVED, {"seqs": [r.seq for r in deliver], "timeout": timeout}
                    ).fetchall()
                }
        if exhausted:
            event(log, "queue_dead_lettered", queue=self.name, count=len(exhausted),
                  reason="max_receives", max_receives=self.max_receives)
        received = [
            ReceivedMessage(
                message_id=str(row.message_id),
                receipt_handle=marked[row.seq][0],
                body=row.body,
                group_id=row.group_id,
                receive_count=marked[row.seq][1],
                sent_at=row.sent_at,
            )
            for row in deliver
        ]
        if received:
            event(log, "queue_received", logging.DEBUG, queue=self.name, count=len(received))
        return received

    def _claim(
        self, conn: psycopg.Connection[Any], room: int, served: list[str],
        deliver: list[_Candidate],
    ) -> list[int]:
        """Lock up to ``room`` heads of groups not in ``served``, append what may be delivered
        to ``deliver`` (head by head, each group's messages in order) and move the exhausted
        messages met on the way to the DLQ; returns the moved messages' ``seq``s."""
        heads = conn.execute(
            _LOCK_HEADS, {"queue": self.name, "limit": room, "served": served}
        ).fetchall()
        if not heads:
            return []
        candidates = (
            conn.cursor(row_factory=class_row(_Candidate))
            .execute(
                _GROUP_MESSAGES,
                {"queue": self.name, "group_ids": [g for _, g in heads], "limit": room},
            )
            .fetchall()
        )
        wanted = len(deliver) + room
        exhausted: list[int] = []
        for row in candidates:
            if len(deliver) == wanted:
                break
            # A message already received max_receives times goes to the DLQ instead of
            # being delivered again; the next message of its group may then go out.
            if row.receive_count >= self.max_receives:
                exhausted.append(row.seq)
            else:
                deliver.append(row)
        if exhausted:
            conn.execute(_MOVE_EXHAUSTED, {"seqs": exhausted, "max_receives": self.max_receives})
        return exhausted

    # -- acknowledging -------------------------------------------------------------------

    def delete(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages by their current receipt handles.

        Every handle that is still current is deleted; if any is not (unknown, expired, or
        already deleted) :class:`~refarch.errors.QueueBatchError` names them afterwards.
        """
        handles = check_receipt_handles(receipt_handles)
        if not handles:
            return
        failures: dict[str, str] = {}
        parsed: list[tuple[str, uuid.UUID]] = []
        for handle in handles:
            try:
                parsed.append((handle, uuid.UUID(handle)))
            except ValueError:
                failures[handle] = "not a receipt handle of the local queue"
        deleted: set[uuid.UUID] = set()
        if parsed:
            with self._connection() as conn, self._consumer_transaction(conn):
                rows = conn.execute(
                    _DELETE, {"queue": self.name, "handles": [value for _, value in parsed]}
                ).fetchall()
            deleted = {uuid.UUID(r[0]) for r in rows}
        succeeded = []
        for handle, value in parsed:
            if value in deleted:
                succeeded.append(handle)
            else:
                failures[handle] = (
                    "receipt handle is not current: the message was already deleted or "
                    "dead-lettered, or its visibility timeout expired"
                )
        event(log, "queue_deleted", logging.DEBUG, queue=self.name, count=len(succeeded),
              failed=len(failures))
        if failures:
            raise QueueBatchError(
                f"{len(failures)} of {len(handles)} deletes failed on queue {self.name!r}: "
                + "; ".join(f"{h}: {why}" for h, why in list(failures.items())[:3]),
                failures,
                succeeded,
            )

    def change_visibility(self, receipt_handle: str, timeout: float) -> None:
        """Hide a received message for ``timeout`` more seconds from now (0: visible now).

        Raises :class:`~refarch.errors.StaleReceiptError` if the handle is not current.
        """
        seconds = check_timeout(timeout, "timeout")
        handle = self._parse_handle(receipt_handle)
        with self._connection() as conn, self._consumer_transaction(conn):
            cur = conn.execute(
                _CHANGE_VISIBILITY, {"queue": self.name, "handle": handle, "timeout": seconds}
            )
            changed = cur.rowcount
        if changed != 1:
            raise StaleReceiptError(
                f"cannot change the visibility of {receipt_handle!r} on queue {self.name!r}: "
                "the message was deleted or dead-lettered, or its visibility timeout expired"
            )

    def dead_letter(self, message: ReceivedMessage, error: str) -> None:
        """Move a received message (still in flight under its handle) to the DLQ with ``error``."""
        if not isinstance(message, ReceivedMessage):
            raise InputError(f"dead_letter needs a ReceivedMessage, got {type(message).__name__}")
        text = clean_error(error)
        handle = self._parse_handle(message.receipt_handle)
        with self._connection() as conn, self._consumer_transaction(conn):
            moved = conn.execute(
                _DEAD_LETTER, {"queue": self.name, "handle": handle, "error": text}
            ).fetchall()
        if not moved:
            raise StaleReceiptError(
                f"cannot dead-letter message {message.message_id} on queue {self.name!r}: its "
                "receipt handle is not current (deleted, dead-lettered, or visibility expired)"
            )
        event(log, "queue_dead_lettered", queue=self.name, count=1, reason="explicit",
              message_id=message.message_id)

    def _parse_handle(self, receipt_handle: str) -> uuid.UUID:
        try:
            return uuid.UUID(receipt_handle)
        except (ValueError, TypeError, AttributeError):
            raise StaleReceiptError(
                f"{receipt_handle!r} is not a receipt handle of the local queue"
            ) from None

    # -- the dead-letter queue and counts ------------------------------------------------

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """List up to ``limit`` messages in the DLQ, oldest first, with their errors."""
        count = check_limit(limit)
        with self._connection() as conn:
            rows = conn.execute(_DEAD_LETTERS, {"queue": self.name, "limit": count}).fetchall()
        return [
            DeadLetter(
                message_id=r[0], body=r[1], group_id=r[2], receive_count=r[3], error=r[4],
                dead_at=r[5],
            )
            for r in rows
        ]

    def redrive(self, limit: int | None = None) -> int:
        """Move DLQ messages (oldest first; all, or at most ``limit``) back to the queue's end,
        with their receive counts reset. Returns how many moved."""
        count = check_limit(limit, optional=True)
        with self._connection() as conn:
            with conn.transaction():
                moved = conn.execute(_REDRIVE, {"queue": self.name, "limit": count}).fetchall()
                if moved:
                    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, self.name))
        event(log, "queue_redriven", queue=self.name, count=len(moved))
        return len(moved)

    def expire(self) -> Expired:
        """Drop the messages and dead letters past their retention now; returns the counts.

        Receives run this by themselves (at most once a minute); it needs the consumer's
        rights (delete on both tables: the indexer role or the owner).
        """
        with self._connection() as conn:
            return self._expire(conn)

    def _expire(self, conn: psycopg.Connection[Any]) -> Expired:
        row = conn.execute(_EXPIRE, {
            "queue": self.name, "retention": self.retention_seconds,
            "dlq_retention": self.dlq_retention_seconds,
        }).fetchone()
        assert row is not None
        expired = Expired(messages=int(row[0]), dead_letters=int(row[1]))
        if expired.messages or expired.dead_letters:
            # A dropped change is lost to the index until a reconcile finds the drift.
            event(log, "queue_expired", level=logging.WARNING, queue=self.name,
                  messages=expired.messages, dead_letters=expired.dead_letters,
                  retention_seconds=self.retention_seconds,
                  dlq_retention_seconds=self.dlq_retention_seconds)
        return expired

    def ages(self) -> QueueAges:
        """How old the oldest message and the oldest dead letter are (see :class:`QueueAges`)."""
        with self._connection() as conn:
            row = conn.execute(_AGES, {"queue": self.name}).fetchone()
        assert row is not None
        return QueueAges(row[0], row[1])

    def stats(self) -> QueueStats:
        """Visible (waiting), in-flight and dead-lettered counts, exact at one instant."""
        with self._connection() as conn:
            row = conn.execute(_STATS, {"queue": self.name}).fetchone()
        assert row is not None
        return QueueStats(visible=row[0], in_flight=row[1], dead=row[2])
