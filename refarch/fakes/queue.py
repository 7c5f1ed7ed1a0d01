"""An in-memory queue with the SQS FIFO semantics of :class:`refarch.queue.port.Queue`.

:class:`FakeQueue` keeps its messages in a list and its time on a :class:`~refarch.clock.Clock`
(a :class:`~refarch.fakes.clock.FakeClock` unless given another), so visibility timeouts,
backoffs and the deduplication window pass when the test moves the clock. It runs the same
contract suite as the Postgres and SQS adapters (``tests/contract/test_queue_contract.py``) and
checks its input with the same :mod:`refarch.queue.validation`, so code tested against it meets
no surprise on a real queue:

* FIFO groups: while a message of a group is in flight, no receive returns another of that
  group; a receive takes a deliverable group's messages in order before the next group's.
* ``receive`` hides what it returns for the visibility timeout, counts the receive and issues
  a new receipt handle; ``delete``, ``change_visibility`` and ``dead_letter`` need the current
  handle of a message still hidden (else ``QueueBatchError`` / ``StaleReceiptError``).
* Deduplication ids are remembered for 5 minutes, also after their message is deleted.
* A receive that would deliver a message for the ``max_receives + 1``-th time moves it to the
  dead-letter list instead; ``dead_letter`` moves one at once with its error; ``redrive`` puts
  dead letters back at the end of the queue with their receive count reset.
* A long poll (``wait_seconds``) returns as soon as something is deliverable: on a fake clock
  it moves time to the moment a hidden message becomes visible (or by the whole wait).

One process only: consumer processes cannot share it (threads can; every call holds a lock).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from refarch.clock import Clock
from refarch.errors import InputError, QueueBatchError, StaleReceiptError
from refarch.fakes.clock import FakeClock
from refarch.queue.port import MAX_BATCH, DeadLetter, OutgoingMessage, QueueStats, ReceivedMessage
from refarch.queue.validation import (
    DEDUP_WINDOW_SECONDS,
    check_limit,
    check_max_messages,
    check_max_receives,
    check_queue_name,
    check_receipt_handles,
    check_send_batch,
    check_timeout,
    check_wait,
    clean_error,
)

# A long poll sleeps until a hidden message's visibility ends, plus this much, so that the
# message is visible when it looks again (float sums are not exact).
_SLACK = 1e-6


@dataclass
class _Message:
    seq: int
    message_id: str
    group_id: str
    dedup_id: str
    body: str
    sent_at: datetime
    receive_count: int = 0
    visible_at: float = float("-inf")
    receipt_handle: str | None = None


@dataclass(frozen=True)
class _Letter:
    message: _Message
    error: str
    dead_at: datetime


class FakeQueue:
    """A :class:`~refarch.queue.port.Queue` in memory (see the module docstring)."""

    def __init__(
        self,
        name: str = "products",
        max_receives: int = 5,
        visibility_timeout: float = 30.0,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.name = check_queue_name(name)
        self.max_receives = check_max_receives(max_receives)
        self.visibility_timeout = check_timeout(visibility_timeout)
        #: The clock visibility, deduplication and long polls follow.
        self.clock: Clock = clock if clock is not None else FakeClock()
        self._lock = threading.Lock()
        self._seq = 0
        self._messages: list[_Message] = []  # in send order
        self._letters: list[_Letter] = []  # oldest first
        self._dedup: dict[str, tuple[str, float]] = {}  # dedup id -> (message id, expires at)
        self._wakers: set[threading.Event] = set()  # long polls waiting for a change

    def __repr__(self) -> str:
        return f"FakeQueue(name={self.name!r}, max_receives={self.max_receives})"

    def __enter__(self) -> FakeQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release (the queue stays usable: consumers sharing it close it too)."""

    # -- sending -----------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Send 1 to 10 messages; a dedup id seen in the last 5 minutes is not enqueued again
        (its id is the original message's)."""
        check_send_batch(messages)
        with self._lock:
            now = self.clock.monotonic()
            ids = []
            for message in messages:
                seen = self._dedup.get(message.dedup_id)
                if seen is not None and seen[1] > now:
                    ids.append(seen[0])
                    continue
                message_id = str(uuid.uuid4())
                self._dedup[message.dedup_id] = (message_id, now + DEDUP_WINDOW_SECONDS)
                self._append(message_id, message.group_id, message.dedup_id, message.body)
                ids.append(message_id)
            self._wake()
        return ids

    def _append(self, message_id: str, group_id: str, dedup_id: str, body: str) -> None:
        self._seq += 1
        self._messages.append(
            _Message(self._seq, message_id, group_id, dedup_id, body, self.clock.now())
        )

    # -- receiving ---------------------------------------------------------------------------

    def receive(
        self,
        max_messages: int = MAX_BATCH,
        *,
        visibility_timeout: float | None = None,
        wait_seconds: float = 0.0,
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` (1 to 10), hiding them for the visibility timeout;
        with ``wait_seconds``, wait up to that long for one to be deliverable."""
        limit = check_max_messages(max_messages)
        timeout = (
            self.visibility_timeout if visibility_timeout is None else check_timeout(visibility_timeout)
        )
        deadline = self.clock.monotonic() + check_wait(wait_seconds)
        while True:
            with self._lock:
                received = self._receive_now(limit, timeout)
                remaining = deadline - self.clock.monotonic()
                if received or remaining <= 0:
                    return received
                nap = min(remaining, self._next_visible_in() + _SLACK)
                woken = threading.Event()
                self._wakers.add(woken)
            try:
                self.clock.wait(woken, nap)
            finally:
                with self._lock:
                    self._wakers.discard(woken)

    def _receive_now(self, limit: int, timeout: float) -> list[ReceivedMessage]:
        now = self.clock.monotonic()
        in_flight = {m.group_id for m in self._messages if m.visible_at > now}
        groups: dict[str, list[_Message]] = {}
        for message in self._messages:
            if message.group_id not in in_flight:
                groups.setdefault(message.group_id, []).append(message)
        deliver: list[_Message] = []
        for messages in groups.values():  # groups by their oldest message
            for message in messages:
                if len(deliver) == limit:
                    break
                if message.receive_count >= self.max_receives:
                    # Received max_receives times without a delete: to the DLQ, and the next
                    # message of the group may go out instead (SQS's redrive policy).
                    self._move_to_dlq(
                        message,
                        f"received {message.receive_count} times without a delete "
                        f"(max_receives={self.max_receives})",
                    )
                    continue
                deliver.append(message)
        for message in deliver:
            message.receive_count += 1
            message.visible_at = now + timeout
            message.receipt_handle = str(uuid.uuid4())
        return [
            ReceivedMessage(
                message_id=m.message_id,
                receipt_handle=m.receipt_handle or "",
                body=m.body,
                group_id=m.group_id,
                receive_count=m.receive_count,
                sent_at=m.sent_at,
            )
            for m in deliver
        ]

    def _next_visible_in(self) -> float:
        now = self.clock.monotonic()
        hidden = [m.visible_at - now for m in self._messages if m.visible_at > now]
        return min(hidden, default=float("inf"))

    def _wake(self) -> None:
        """Something may have become deliverable: long polls look again."""
        for woken in self._wakers:
            woken.set()

    # -- acknowledging -----------------------------------------------------------------------

    def _current(self, receipt_handle: str) -> _Message | None:
        """The message ``receipt_handle`` is the current handle of, while it is still hidden."""
        now = self.clock.monotonic()
        for message in self._messages:
            if message.receipt_handle == receipt_handle and message.visible_at > now:
                return message
        return None

    def delete(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages; raises ``QueueBatchError`` naming the handles that were
        not current, after deleting those that were."""
        handles = check_receipt_handles(receipt_handles)
        if not handles:
            return
        failures: dict[str, str] = {}
        succeeded: list[str] = []
        with self._lock:
            for handle in handles:
                message = self._current(handle)
                if message is None:
                    failures[handle] = (
                        "receipt handle is not current: the message was already deleted or "
                        "dead-lettered, or its visibility timeout expired"
                    )
                    continue
                self._messages.remove(message)
                succeeded.append(handle)
            self._wake()
        if failures:
            raise QueueBatchError(
                f"{len(failures)} of {len(handles)} deletes failed on queue {self.name!r}: "
                + "; ".join(f"{h}: {why}" for h, why in list(failures.items())[:3]),
                failures,
                succeeded,
            )

    def change_visibility(self, receipt_handle: str, timeout: float) -> None:
        """Hide a received message for ``timeout`` more seconds from now (0: visible now)."""
        seconds = check_timeout(timeout, "timeout")
        with self._lock:
            message = self._current(receipt_handle) if isinstance(receipt_handle, str) else None
            if message is None:
                raise StaleReceiptError(
                    f"cannot change the visibility of {receipt_handle!r} on queue {self.name!r}: "
                    "the message was deleted or dead-lettered, or its visibility timeout expired"
                )
            message.visible_at = self.clock.monotonic() + seconds
            self._wake()

    def dead_letter(self, message: ReceivedMessage, error: str) -> None:
        """Move a received message (still hidden under its handle) to the DLQ with ``error``."""
        if not isinstance(message, ReceivedMessage):
            raise InputError(f"dead_letter needs a ReceivedMessage, got {type(message).__name__}")
        text = clean_error(error)
        with self._lock:
            held = self._current(message.receipt_handle)
            if held is None:
                raise StaleReceiptError(
                    f"cannot dead-letter message {message.message_id} on queue {self.name!r}: its "
                    "receipt handle is not current (deleted, dead-lettered, or visibility expired)"
                )
            self._move_to_dlq(held, text)
            self._wake()

    def _move_to_dlq(self, message: _Message, error: str) -> None:
        self._messages.remove(message)
        self._letters.append(_Letter(message, error, self.clock.now()))

    # -- the dead-letter queue and counts ----------------------------------------------------

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first, with their errors."""
        count = check_limit(limit)
        with self._lock:
            letters = self._letters[:count]
        return [
            DeadLetter(
                message_id=letter.message.message_id,
                body=letter.message.body,
                group_id=letter.message.group_id,
                receive_count=letter.message.receive_count,
                error=letter.error,
                dead_at=letter.dead_at,
            )
            for letter in letters
        ]

    def redrive(self, limit: int | None = None) -> int:
        """Move dead letters (oldest first; all, or at most ``limit``) back to the end of the
        queue with their receive counts reset; returns how many moved."""
        count = check_limit(limit, optional=True)
        with self._lock:
            moved = self._letters[:count] if count is not None else list(self._letters)
            del self._letters[: len(moved)]
            for letter in moved:
                m = letter.message
                self._append(m.message_id, m.group_id, m.dedup_id, m.body)
            self._wake()
        return len(moved)

    def stats(self) -> QueueStats:
        """Visible, in-flight and dead-lettered counts (exact)."""
        with self._lock:
            now = self.clock.monotonic()
            in_flight = sum(1 for m in self._messages if m.visible_at > now)
            return QueueStats(
                visible=len(self._messages) - in_flight, in_flight=in_flight, dead=len(self._letters)
            )
