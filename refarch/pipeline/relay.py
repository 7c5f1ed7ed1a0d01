"""The relay: moves captured changes from the Postgres outbox to the queue (``refarch relay``).

One :func:`relay_step` claims a batch of outbox rows (``FOR UPDATE SKIP LOCKED``, so several
relays share the work), coalesces the rows of each product into one message, publishes them,
and deletes the rows, all in one transaction: rows are deleted only once the queue
acknowledged, and a relay killed at any point leaves its rows to be claimed again (a change
published twice is deduplicated by the queue or harmless to the indexer).

:func:`run` only loops: step until the outbox is drained, then wait for a NOTIFY (a wake-up;
the outbox row is the carrier) or the poll interval, whichever comes first. It survives a
Postgres restart or a queue outage by reconnecting with backoff. Its waits and durations are
on an injectable :class:`~refarch.clock.Clock` (the system clock by default).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from refarch.clock import SYSTEM_CLOCK, Clock
from refarch.errors import QueueError
from refarch.logs import event
from refarch.pipeline import outbox
from refarch.pipeline.changes import publish
from refarch.queue.port import Queue

log = logging.getLogger("refarch.pipeline.relay")


@dataclass(frozen=True, slots=True)
class RelayStepResult:
    """What one step did: outbox rows claimed and deleted, messages published."""

    claimed: int
    published: int
    seconds: float


def relay_step(
    conn: psycopg.Connection, queue: Queue, batch_size: int, *, clock: Clock = SYSTEM_CLOCK
) -> RelayStepResult:
    """Claim up to ``batch_size`` outbox rows, publish them coalesced, delete them.

    ``conn`` must be in autocommit mode (the step opens its own transaction). Raises
    :class:`~refarch.errors.QueueError` (rows kept) when the queue does not acknowledge.
    """
    started = clock.monotonic()
    with conn.transaction():
        rows = outbox.claim(conn, batch_size)
        if not rows:
            return RelayStepResult(0, 0, clock.monotonic() - started)
        changes = outbox.coalesce(rows)
        published = publish(queue, changes)
        outbox.delete(conn, [row.id for row in rows])
    return RelayStepResult(len(rows), published, clock.monotonic() - started)


def drain(
    conn: psycopg.Connection, queue: Queue, batch_size: int, *, clock: Clock = SYSTEM_CLOCK
) -> RelayStepResult:
    """Step until the outbox is empty; returns the totals (used by tests and notebooks)."""
    claimed = published = 0
    started = clock.monotonic()
    while True:
        result = relay_step(conn, queue, batch_size, clock=clock)
        claimed += result.claimed
        published += result.published
        if result.claimed == 0:
            return RelayStepResult(claimed, published, clock.monotonic() - started)


def _wait_for_wakeup(
    conn: psycopg.Connection, poll_seconds: float, stop: threading.Event, clock: Clock
) -> None:
    """Return on a NOTIFY, after ``poll_seconds``, or soon after ``stop`` is set.

    Polling matters: a change committed while no relay listened is still in the outbox and is
    found by the next step; NOTIFY only makes that step come sooner.
    """
    deadline = clock.monotonic() + poll_seconds
    while not stop.is_set():
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return
        for _ in conn.notifies(timeout=min(remaining, 0.5), stop_after=1):
            return


def run(
    connect: Callable[[], psycopg.Connection],
    queue: Queue,
    *,
    batch_size: int,
    poll_seconds: float,
    stop: threading.Event,
    max_backoff: float = 30.0,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Relay until ``stop`` is set. ``connect`` opens an autocommit connection (as the relay role).

    After a database or queue error it reconnects after 0.5 s, doubling up to ``max_backoff``
    while the errors go on; a step that succeeds resets the wait.
    """
    backoff = 0.5
    while not stop.is_set():
        try:
            with connect() as conn:
                conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                event(log, "relay_listening", channel=outbox.NOTIFY_CHANNEL, batch_size=batch_size)
                while not stop.is_set():
                    result = relay_step(conn, queue, batch_size, clock=clock)
                    backoff = 0.5
                    if result.claimed:
                        event(
                            log, "relay_published", claimed=result.claimed,
                            published=result.published, seconds=result.seconds,
                        )
                    if result.claimed < batch_size:
                        _wait_for_wakeup(conn, poll_seconds, stop, clock)
        except (psycopg.Error, QueueError) as exc:
            event(log, "relay_error", level=logging.WARNING, error=str(exc).strip(), retry_in=backoff)
            clock.wait(stop, backoff)
            backoff = min(backoff * 2, max_backoff)
    event(log, "relay_stopped")
