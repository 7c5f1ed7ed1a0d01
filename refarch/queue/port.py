"""The queue port: SQS semantics that every adapter (local Postgres, Amazon SQS) implements.

Semantics (the contract suite in ``tests/contract/test_queue_contract.py`` checks each adapter):

* ``send_batch`` takes 1 to 10 messages (each body at most 256 KiB of UTF-8, the batch at most
  256 KiB in total); invalid input raises ``InputError`` and sends nothing. Messages of one
  ``group_id`` are delivered in order and never to two consumers at once (SQS FIFO message
  groups): while any message of a group is in flight, no receive returns another message of
  that group. One receive may return several messages of a group, in order (SQS prefers to),
  so a consumer must handle them in the order given. A ``dedup_id``
  seen within the 5-minute deduplication window (even if that message was since deleted) is
  accepted but not enqueued again.
* ``receive`` returns up to 10 visible messages and hides them for the visibility timeout; each
  receive increments the message's ``receive_count`` and issues a new ``receipt_handle``.
* ``delete`` removes received messages for good; ``change_visibility`` extends (or ends) a hide.
  Both need the message's current handle while it is still hidden: a handle whose visibility
  timeout expired is refused (``StaleReceiptError``; ``QueueBatchError`` for ``delete``, after
  deleting the handles that were current), as SQS FIFO queues do.
* After ``max_receives`` receives without a delete, a message moves to the dead-letter queue
  (DLQ) on the receive that would deliver it once more (SQS's redrive policy);
  ``dead_letter`` moves a message still in flight there at once, with the error that made it
  fail. Either way it no longer blocks its group or the rest of the queue. ``dead_letters``
  lists the DLQ oldest first; ``redrive`` moves DLQ messages back to the end of the queue,
  where they start again at ``receive_count`` 0.
* ``stats`` reports visible, in-flight and dead-lettered counts (approximate on SQS).
* ``close`` releases connections. Adapter limits and the SQS corners are in each adapter's
  module docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

#: The most messages one send or receive call handles (the SQS limit).
MAX_BATCH = 10


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to send: a JSON body, its FIFO group and its deduplication id."""

    body: str
    group_id: str
    dedup_id: str


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A received message; ``receipt_handle`` identifies this receive for delete/visibility."""

    message_id: str
    receipt_handle: str
    body: str
    group_id: str
    receive_count: int
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the dead-letter queue, with the last error recorded for it (if any)."""

    message_id: str
    body: str
    group_id: str
    receive_count: int
    error: str | None
    dead_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts for the status panel: waiting, hidden by a receive, and dead-lettered messages."""

    visible: int
    in_flight: int
    dead: int


@runtime_checkable
class Queue(Protocol):
    """A queue with SQS FIFO semantics and a dead-letter queue."""

    max_receives: int

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Send 1 to 10 messages; returns their message ids. Raises QueueError on failure."""
        ...

    def receive(
        self,
        max_messages: int = MAX_BATCH,
        *,
        visibility_timeout: float | None = None,
        wait_seconds: float = 0.0,
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` (1 to 10), waiting up to ``wait_seconds`` for one."""
        ...

    def delete(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages (acknowledge them)."""
        ...

    def change_visibility(self, receipt_handle: str, timeout: float) -> None:
        """Hide a received message for ``timeout`` more seconds (0 makes it visible now)."""
        ...

    def dead_letter(self, message: ReceivedMessage, error: str) -> None:
        """Move a received message to the DLQ at once, recording ``error``."""
        ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """List messages in the DLQ, oldest first."""
        ...

    def redrive(self, limit: int | None = None) -> int:
        """Move DLQ messages back to the queue (all, or at most ``limit``); returns how many."""
        ...

    def stats(self) -> QueueStats:
        """Visible, in-flight and dead-lettered counts."""
        ...

    def close(self) -> None:
        """Release the adapter's connections (a no-op where there are none)."""
        ...
