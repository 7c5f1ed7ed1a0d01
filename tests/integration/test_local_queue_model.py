"""Model-based test of the local queue on a real PostgreSQL (issue 14): hypothesis drives
sends (with repeated deduplication ids), receives, deletes, visibility changes, explicit dead
letters and redrives, and checks every answer, the DLQ and the counts against a plain
reference of the SQS FIFO semantics in ``refarch/queue/port.py``.

Time is kept out of it: a receive hides its messages either for 60 s (in flight for the whole
example) or for 0 s (visible again at once, its handle stale at once: what an expired
visibility timeout leaves), and ``change_visibility`` to 0 ends a hide. So every step has
exactly one right outcome, with no sleeping. The reference does not fix how a receive picks
among groups (SQS does not); it checks that what came back was allowed, that each group's
messages came (or went to the DLQ) in order and without gaps, and that a receive finds
something whenever something is deliverable. Seeded and bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from refarch.errors import QueueBatchError, StaleReceiptError
from refarch.queue.local import PostgresQueue
from refarch.queue.port import OutgoingMessage, QueueStats, ReceivedMessage
from tests.contract.queue_harness import queue_database

MAX_RECEIVES = 2
LONG = 60.0  # longer than any example: the message stays in flight
GROUPS = ("g0", "g1", "g2")


@dataclass
class Msg:
    """One message as the reference sees it."""

    message_id: str
    body: str
    group: str
    order: int  # send (or redrive) order: the queue's order
    receive_count: int = 0
    handle: str | None = None  # the current receipt handle while in flight
    #: The DLQ's error: None while in the queue; "max_receives" or the text given.
    dead: str | None = None


@dataclass
class QueueReference:
    """Messages in the queue (by id), the DLQ in order, every dedup id seen."""

    messages: dict[str, Msg] = field(default_factory=dict)
    dlq: list[Msg] = field(default_factory=list)
    dedup: dict[str, str] = field(default_factory=dict)  # dedup id -> first message id
    next_order: int = 0

    def in_flight(self) -> list[Msg]:
        return [m for m in self.messages.values() if m.handle is not None]

    def group(self, group: str) -> list[Msg]:
        """The group's messages in the queue, in order."""
        return sorted((m for m in self.messages.values() if m.group == group),
                      key=lambda m: m.order)

    def blocked(self, group: str) -> bool:
        return any(m.handle is not None for m in self.group(group))

    def deliverable(self) -> bool:
        """Whether a receive must find something: an unblocked group holding a message that
        is not exhausted (exhausted ones ahead of it go to the DLQ on the way)."""
        return any(not self.blocked(g) and any(m.receive_count < MAX_RECEIVES
                                               for m in self.group(g)) for g in GROUPS)

    def by_handle(self, handle: str) -> Msg | None:
        return next((m for m in self.messages.values() if m.handle == handle), None)


class QueueMachine(RuleBasedStateMachine):
    """A new queue on the test database against :class:`QueueReference`."""

    conninfo: str  # set by the test below

    def __init__(self) -> None:
        super().__init__()
        self.queue = PostgresQueue(self.conninfo, name=f"model{uuid.uuid4().hex[:12]}",
                                   max_receives=MAX_RECEIVES, visibility_timeout=LONG)
        self.ref = QueueReference()
        self.handles: list[str] = []  # every handle ever issued (most are stale later)
        self.sent = 0

    # -- sending and receiving -----------------------------------------------------------------

    @rule(data=st.data(), count=st.integers(1, 3))
    def send(self, data: st.DataObject, count: int) -> None:
        batch: list[OutgoingMessage] = []
        for _ in range(count):
            self.sent += 1
            reuse = sorted(self.ref.dedup)
            dedup = (data.draw(st.sampled_from(reuse)) if reuse and data.draw(st.booleans())
                     else f"d{self.sent}")
            batch.append(OutgoingMessage(f"body{self.sent}", data.draw(st.sampled_from(GROUPS)),
                                         dedup))
        ids = self.queue.send_batch(batch)
        assert len(ids) == len(batch)
        for message, message_id in zip(batch, ids, strict=True):
            first = self.ref.dedup.get(message.dedup_id)
            if first is not None:  # a duplicate: accepted, not enqueued, the first one's id
                assert message_id == first
                continue
            assert message_id not in self.ref.messages and message_id not in {
                m.message_id for m in self.ref.dlq}
            self.ref.dedup[message.dedup_id] = message_id
            self.ref.messages[message_id] = Msg(message_id, message.body, message.group_id,
                                                self.ref.next_order)
            self.ref.next_order += 1

    @rule(limit=st.integers(1, 10), hide=st.sampled_from([0.0, LONG]))
    def receive(self, limit: int, hide: float) -> None:
        must_find = self.ref.deliverable()
        dlq_before = len(self.ref.dlq)
        batch = self.queue.receive(limit, visibility_timeout=hide)
        dead_now = self.queue.dead_letters(limit=100)
        moved = [d.message_id for d in dead_now[dlq_before:]]
        assert len(batch) <= limit
        assert batch or not must_find, "a receive found nothing while a message was deliverable"
        self._check_delivery(batch, moved)
        for message_id in moved:
            msg = self.ref.messages.pop(message_id)
            msg.dead = "max_receives"
            self.ref.dlq.append(msg)
        for got in batch:
            msg = self.ref.messages[got.message_id]
            msg.receive_count += 1
            msg.handle = got.receipt_handle if hide else None
            self.handles.append(got.receipt_handle)

    def _check_delivery(self, batch: list[ReceivedMessage], moved: list[str]) -> None:
        """What one receive delivered and dead-lettered was allowed (see the docstring)."""
        delivered = {m.message_id for m in batch}
        assert len(delivered) == len(batch), "a message delivered twice in one batch"
        assert set(moved).isdisjoint(delivered)
        for got in batch:
            msg = self.ref.messages.get(got.message_id)
            assert msg is not None, f"delivered {got.message_id}, which is not in the queue"
            assert (got.body, got.group_id) == (msg.body, msg.group)
            assert got.receive_count == msg.receive_count + 1
            assert got.receipt_handle not in self.handles, "a receipt handle was reused"
        for message_id in moved:
            msg = self.ref.messages.get(message_id)
            assert msg is not None and msg.receive_count >= MAX_RECEIVES, (
                f"{message_id} went to the DLQ before its {MAX_RECEIVES} receives")
        touched = {self.ref.messages[i].group for i in [*delivered, *moved]}
        for group in touched:
            assert not self.ref.blocked(group), f"group {group} delivered while in flight"
            members = self.ref.group(group)
            taken = [m for m in members if m.message_id in delivered or m.message_id in moved]
            assert taken == members[:len(taken)], f"group {group} skipped a message"
            order = [got.message_id for got in batch if got.group_id == group]
            assert order == [m.message_id for m in taken if m.message_id in delivered], (
                f"group {group} out of order")
            for m in taken:
                assert (m.message_id in moved) == (m.receive_count >= MAX_RECEIVES), (
                    f"{m.message_id}: exhausted messages go to the DLQ, others are delivered")

    # -- acknowledging -------------------------------------------------------------------------

    @precondition(lambda self: bool(self.handles))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(self.handles), min_size=1, max_size=3,
                                    unique=True))
        current = [h for h in chosen if self.ref.by_handle(h) is not None]
        stale = [h for h in chosen if h not in current]
        if stale:
            with pytest.raises(QueueBatchError) as caught:
                self.queue.delete(chosen)
            assert set(caught.value.failures) == set(stale)
            assert sorted(caught.value.succeeded) == sorted(current)
        else:
            self.queue.delete(chosen)
        for handle in current:
            msg = self.ref.by_handle(handle)
            assert msg is not None
            del self.ref.messages[msg.message_id]

    @precondition(lambda self: bool(self.handles))
    @rule(data=st.data(), timeout=st.sampled_from([0.0, LONG]))
    def change_visibility(self, data: st.DataObject, timeout: float) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        msg = self.ref.by_handle(handle)
        if msg is None:
            with pytest.raises(StaleReceiptError):
                self.queue.change_visibility(handle, timeout)
            return
        self.queue.change_visibility(handle, timeout)
        if not timeout:
            msg.handle = None  # visible now; the handle is stale from here on

    @precondition(lambda self: bool(self.handles))
    @rule(data=st.data())
    def dead_letter(self, data: st.DataObject) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        msg = self.ref.by_handle(handle)
        error = f"failed at step {len(self.handles)}"
        received = ReceivedMessage(
            message_id=msg.message_id if msg else "unknown", receipt_handle=handle, body="",
            group_id=msg.group if msg else "", receive_count=msg.receive_count if msg else 1,
        )
        if msg is None:
            with pytest.raises(StaleReceiptError):
                self.queue.dead_letter(received, error)
            return
        self.queue.dead_letter(received, error)
        del self.ref.messages[msg.message_id]
        msg.handle, msg.dead = None, error
        self.ref.dlq.append(msg)

    @rule(limit=st.one_of(st.none(), st.integers(1, 2)))
    def redrive(self, limit: int | None) -> None:
        count = len(self.ref.dlq) if limit is None else min(limit, len(self.ref.dlq))
        assert self.queue.redrive(limit) == count
        for msg in self.ref.dlq[:count]:
            msg.receive_count, msg.dead, msg.order = 0, None, self.ref.next_order
            self.ref.next_order += 1
            self.ref.messages[msg.message_id] = msg
        del self.ref.dlq[:count]

    # -- what must hold after every step -------------------------------------------------------

    @invariant()
    def counts_and_dead_letters_agree(self) -> None:
        in_flight = len(self.ref.in_flight())
        assert self.queue.stats() == QueueStats(visible=len(self.ref.messages) - in_flight,
                                                in_flight=in_flight, dead=len(self.ref.dlq))
        dead = self.queue.dead_letters(limit=100)
        assert [d.message_id for d in dead] == [m.message_id for m in self.ref.dlq]
        for letter, msg in zip(dead, self.ref.dlq, strict=True):
            assert (letter.body, letter.group_id, letter.receive_count) == (
                msg.body, msg.group, msg.receive_count)
            if msg.dead == "max_receives":
                assert letter.error is not None and letter.error.startswith(
                    f"received {msg.receive_count} times")
            else:
                assert letter.error == msg.dead

    def teardown(self) -> None:
        self.queue.close()


@pytest.fixture(scope="module")
def model_db(pg_server: Any, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for this module."""
    with queue_database(pg_server, pg_template, prefix="queuemodel") as url:
        yield url


# psycopg_pool's worker threads call random() (connection lifetime jitter) while hypothesis
# draws; hypothesis warns about any use of the random module during a draw.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_local_queue_agrees_with_the_reference(model_db: str) -> None:
    QueueMachine.conninfo = model_db
    run_state_machine_as_test(QueueMachine, settings=settings(
        derandomize=True, max_examples=100, stateful_step_count=30, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    ))
