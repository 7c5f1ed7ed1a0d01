"""One contract suite for every queue adapter: the semantics in ``refarch/queue/port.py``.

Adapters under test:

* ``local``: :class:`~refarch.queue.local.PostgresQueue` on a real, migrated PostgreSQL.
* ``moto``: :class:`~refarch.queue.sqs.SqsQueue` against moto's server mode over real HTTP.
* ``sqs``: the same against real Amazon SQS, when ``REFARCH_TEST_SQS=1`` and AWS credentials
  exist (queues named ``refarch-test-*`` are created and deleted).
* ``fake``: :class:`~refarch.fakes.FakeQueue` in memory, on a :class:`~refarch.fakes.FakeClock`:
  the harness's clock moves its time, so timeouts and long polls pass in no real time. The
  concurrency tests give it the system clock instead (their consumers are real threads).

Where moto differs from SQS, AWS's documentation decides what the contract is, and the case is
skipped on moto only, saying why (see ``MOTO_DIFFERENCES``). The fake skips only what needs
another process (see ``FAKE_LIMITS``).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, TypeVar

import pytest

from refarch.clock import SYSTEM_CLOCK, Clock
from refarch.errors import InputError, QueueBatchError, StaleReceiptError
from refarch.fakes import FakeClock, FakeQueue
from refarch.queue.port import (
    MAX_BATCH,
    DeadLetter,
    OutgoingMessage,
    Queue,
    QueueStats,
    ReceivedMessage,
)
from refarch.queue.validation import MAX_BODY_BYTES, MAX_ERROR_CHARS
from tests.contract.queue_harness import (
    QueueSpec,
    consume,
    moto_server,
    queue_database,
    sqs_client,
)
from tests.support.waiting import poll_value

T = TypeVar("T")

#: Where moto (5.2.5) departs from Amazon SQS, per AWS's documentation. Tests that hit one of
#: these are skipped on moto with the reason; the local adapter and real SQS still run them.
MOTO_DIFFERENCES = {
    "dedup_after_delete": (
        "moto forgets a deduplication id once its message is deleted; SQS keeps it for the whole "
        "5-minute interval ('any messages sent with the same message deduplication ID are "
        "accepted successfully but aren't delivered during the 5-minute deduplication interval')"
    ),
    "stale_receipt": (
        "moto accepts any receipt handle a message ever had; SQS FIFO refuses an expired one "
        "('InvalidParameterValue ... Reason: The receipt handle has expired', AWS knowledge "
        "center: sqs-receipt-handle-error)"
    ),
    "concurrent_receive": (
        "moto's ReceiveMessage is not atomic: concurrent receives race on the same in-memory "
        "queue (observed: two simultaneous receives both returned messages of one group), "
        "while SQS documents that in-flight messages block their group ('Inflight messages "
        "block delivery of available messages within the same message group')"
    ),
}

#: What the in-memory fake cannot do. Tests that need it are skipped on the fake with the reason.
FAKE_LIMITS = {
    "processes": (
        "the in-memory queue lives in one process's memory: consumer processes cannot share it "
        "(the same test with consumer threads runs on it)"
    ),
}


# -- harness ---------------------------------------------------------------------------------


@dataclass
class Harness:
    """Builds fresh queues of one adapter and knows its timing."""

    kind: str
    make_spec: Callable[[int, float], QueueSpec]
    #: A short visibility timeout the adapter honours exactly enough for expiry tests.
    tick: float
    #: How long counts may take to settle (SQS's Approximate* attributes lag).
    settle: float
    #: Long-poll wait that proves a queue empty: 0 where a short poll sees everything (local,
    #: moto); real SQS short polls sample only some servers, so it needs a long poll.
    quiet: float
    opened: list[Queue]
    #: The time the queues keep: the system clock, or the fake's FakeClock.
    clock: Clock = SYSTEM_CLOCK

    def queue(self, max_receives: int = 5, visibility_timeout: float = 30.0) -> Queue:
        """A new, empty queue."""
        q = self.spec(max_receives, visibility_timeout).build()
        self.opened.append(q)
        return q

    def spec(self, max_receives: int = 5, visibility_timeout: float = 30.0) -> QueueSpec:
        """The recipe of a new, empty queue."""
        return self.make_spec(max_receives, visibility_timeout)

    def concurrent_spec(
        self, max_receives: int = 5, visibility_timeout: float = 30.0, *, processes: bool = False
    ) -> QueueSpec:
        """The recipe of a new, empty queue for consumer threads or processes, in real time."""
        if self.kind == "fake":
            if processes:
                pytest.skip(f"the fake cannot do this: {FAKE_LIMITS['processes']}")
            shared = FakeQueue(f"t{uuid.uuid4().hex[:16]}", max_receives, visibility_timeout,
                               clock=SYSTEM_CLOCK)
            return QueueSpec("fake", max_receives, visibility_timeout, shared=shared)
        return self.spec(max_receives, visibility_timeout)

    def skip_on_moto(self, difference: str) -> None:
        """Skip this test on moto, where it behaves unlike SQS (see MOTO_DIFFERENCES)."""
        if self.kind == "moto":
            pytest.skip(f"moto differs from SQS: {MOTO_DIFFERENCES[difference]}")

    def receive_nothing(self, q: Queue) -> list[ReceivedMessage]:
        """A receive that should find nothing deliverable; returns what it found."""
        return q.receive(10, wait_seconds=self.quiet)

    def drain(self, q: Queue, rounds: int = 30) -> list[ReceivedMessage]:
        """Receive and delete until the queue answers empty; returns deliveries in order."""
        got: list[ReceivedMessage] = []
        for _ in range(rounds):
            batch = q.receive(10, visibility_timeout=30, wait_seconds=self.quiet)
            if not batch:
                break
            got.extend(batch)
            q.delete([m.receipt_handle for m in batch])
        return got

    def receive_until(
        self, q: Queue, check: Callable[[list[ReceivedMessage]], bool], timeout: float, **kwargs: Any
    ) -> list[ReceivedMessage]:
        """Receive (1 s long polls) until a batch satisfies ``check``; returns it (or the last)."""
        deadline = self.clock.monotonic() + timeout
        batch = q.receive(10, wait_seconds=1, **kwargs)
        while not check(batch) and self.clock.monotonic() < deadline:
            batch = q.receive(10, wait_seconds=1, **kwargs)
        return batch

    def collect(self, q: Queue, count: int, timeout: float = 10) -> list[ReceivedMessage]:
        """Receive (and keep hidden) until ``count`` messages arrived; returns them."""
        got: list[ReceivedMessage] = []
        deadline = self.clock.monotonic() + timeout
        while len(got) < count and self.clock.monotonic() < deadline:
            got += q.receive(10, wait_seconds=1)
        assert len(got) == count, f"expected {count} messages, received {len(got)}"
        return got

    def eventually(self, read: Callable[[], T], check: Callable[[T], bool]) -> T:
        """``read()`` until ``check`` holds or the settle time passes; returns the last value."""
        return poll_value(read, check, self.settle)

    @contextmanager
    def later(self, delay: float, action: Callable[[], object]) -> Iterator[None]:
        """Run ``action`` ``delay`` seconds into the block (on another thread, or on the fake
        clock when the fake's time reaches it); the block ends after it ran."""
        if isinstance(self.clock, FakeClock):
            self.clock.call_later(delay, action)
            yield
            return
        timer = threading.Timer(delay, action)
        timer.start()
        try:
            yield
        finally:
            timer.join()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's SQS in server mode on a free port."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def queue_conninfo(pg_server: Any, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database on the test PostgreSQL server for this module."""
    with queue_database(pg_server, pg_template) as url:
        yield url


def _real_sqs_reason() -> str | None:
    if os.environ.get("REFARCH_TEST_SQS") != "1":
        return "real SQS runs only with REFARCH_TEST_SQS=1 (it creates and deletes queues)"
    import boto3

    if boto3.Session().get_credentials() is None:
        return "REFARCH_TEST_SQS=1 but no AWS credentials were found"
    return None


@pytest.fixture(params=["local", "moto", "sqs", "fake"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Each adapter in turn; every ``harness.queue()`` is a new, empty queue."""
    opened: list[Queue] = []
    cleanup: list[Callable[[], None]] = []
    kind = request.param
    if kind == "fake":
        clock = FakeClock()

        def make_spec(max_receives: int, visibility_timeout: float) -> QueueSpec:
            shared = FakeQueue(f"t{uuid.uuid4().hex[:16]}", max_receives, visibility_timeout,
                               clock=clock)
            return QueueSpec("fake", max_receives, visibility_timeout, shared=shared)

        h = Harness(kind, make_spec, tick=0.5, settle=0.0, quiet=0.0, opened=opened, clock=clock)
    elif kind == "local":
        conninfo = request.getfixturevalue("queue_conninfo")

        def make_spec(max_receives: int, visibility_timeout: float) -> QueueSpec:
            return QueueSpec("local", max_receives, visibility_timeout, conninfo=conninfo,
                             name=f"t{uuid.uuid4().hex[:16]}")

        h = Harness(kind, make_spec, tick=0.5, settle=0.0, quiet=0.0, opened=opened)
    else:
        if kind == "moto":
            endpoint: str | None = request.getfixturevalue("moto_endpoint")
            region = "us-east-1"
            settle = 0.0
        else:
            reason = _real_sqs_reason()
            if reason:
                pytest.skip(reason)
            endpoint = None
            region = (
                os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
            )
            settle = 90.0  # ApproximateNumberOf* can lag by about a minute
        client = sqs_client(endpoint, region)

        def make_spec(max_receives: int, visibility_timeout: float) -> QueueSpec:
            from refarch.queue.sqs import create_queues

            name = f"refarch-test-{uuid.uuid4().hex[:12]}"
            queue_url, dlq_url = create_queues(client, name, max_receives=max_receives)
            cleanup.append(lambda: client.delete_queue(QueueUrl=queue_url))
            cleanup.append(lambda: client.delete_queue(QueueUrl=dlq_url))
            return QueueSpec("sqs", max_receives, visibility_timeout, queue_url=queue_url,
                             dlq_url=dlq_url, endpoint_url=endpoint, region=region)

        h = Harness(kind, make_spec, tick=1.0, settle=settle, quiet=0.0 if endpoint else 1.0,
                    opened=opened)
    yield h
    for q in opened:
        q.close()
    for undo in cleanup:
        undo()


def msg(body: str, group: str = "g", dedup: str | None = None) -> OutgoingMessage:
    """An outgoing message; the dedup id defaults to the body."""
    return OutgoingMessage(body=body, group_id=group, dedup_id=dedup or body)


# -- the protocol ------------------------------------------------------------------------------


def test_adapter_satisfies_the_queue_protocol(harness: Harness) -> None:
    q = harness.queue(max_receives=3)
    assert isinstance(q, Queue)
    assert q.max_receives == 3


# -- sending and receiving -------------------------------------------------------------------


def test_send_receive_delete_round_trip(harness: Harness) -> None:
    q = harness.queue()
    sent = [msg(f"body-{i}", group=f"g{i}") for i in range(3)]
    ids = q.send_batch(sent)
    assert len(ids) == 3 and len(set(ids)) == 3

    got = harness.collect(q, 3)
    assert {m.message_id for m in got} == set(ids)
    by_body = {m.body: m for m in got}
    assert set(by_body) == {"body-0", "body-1", "body-2"}
    for i in range(3):
        m = by_body[f"body-{i}"]
        assert m.group_id == f"g{i}"
        assert m.receive_count == 1
        assert m.sent_at is not None and m.sent_at.tzinfo is not None
        assert m.receipt_handle

    q.delete([m.receipt_handle for m in got])
    assert q.receive(10) == []
    assert harness.eventually(q.stats, lambda s: s == QueueStats(0, 0, 0)) == QueueStats(0, 0, 0)


def test_a_full_batch_of_ten_and_max_size_bodies_are_accepted(harness: Harness) -> None:
    q = harness.queue()
    ids = q.send_batch([msg(f"m{i}", group=f"g{i}") for i in range(MAX_BATCH)])
    assert len(ids) == MAX_BATCH
    big = "x" * MAX_BODY_BYTES  # exactly 256 KiB: the largest allowed body
    (big_id,) = q.send_batch([msg(big, group="big", dedup="big")])
    delivered = harness.drain(q)
    assert len(delivered) == MAX_BATCH + 1
    assert any(m.message_id == big_id and m.body == big for m in delivered)


def test_unicode_bodies_arrive_unchanged(harness: Harness) -> None:
    q = harness.queue()
    body = '{"name": "Café crème ☕", "note": "tab\\there", "emoji": "🚀", "quote": "\'; DROP TABLE"}'
    q.send_batch([msg(body, dedup="u1"), msg("line1\nline2\r\n\ttabbed", group="h", dedup="u2")])
    bodies = {m.body for m in harness.drain(q)}
    assert bodies == {body, "line1\nline2\r\n\ttabbed"}


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        ([], "1 to 10 messages, got 0"),
        ([msg(f"m{i}", dedup=f"d{i}") for i in range(11)], "1 to 10 messages, got 11"),
        ([msg("ok"), msg("x" * (MAX_BODY_BYTES + 1), dedup="big")], "message 1 of the batch"),
        ([msg("é" * (MAX_BODY_BYTES // 2 + 1), dedup="wide")], "bytes in UTF-8"),
        (
            [msg("a" * 150_000, dedup="a"), msg("b" * 150_000, dedup="b")],
            "batch's bodies total 300000 bytes",
        ),
        ([msg("")], "body is empty"),
        ([msg("nul\x00byte", dedup="n")], "U+0000"),
        ([msg("bell\x07", dedup="b")], "U+0007"),
        ([msg("lone \ud800 surrogate", dedup="s")], "U+D800"),
        ([OutgoingMessage("ok", "", "d")], "group_id must be a non-empty str"),
        ([OutgoingMessage("ok", "g" * 129, "d")], "group_id is 129 characters"),
        ([OutgoingMessage("ok", "g", "has space")], "dedup_id 'has space'"),
        ([OutgoingMessage("ok", "grüppe", "d")], "group_id 'grüppe'"),
        (["not a message"], "is a str, not an OutgoingMessage"),
    ],
    ids=[
        "empty", "eleven", "body-too-big", "utf8-bytes-count", "batch-total", "empty-body",
        "nul", "control-char", "surrogate", "empty-group", "long-group", "dedup-space",
        "non-ascii-group", "wrong-type",
    ],
)
def test_invalid_batches_are_refused_whole(
    harness: Harness, batch: list[Any], expected: str
) -> None:
    q = harness.queue()
    with pytest.raises(InputError, match=re.escape(expected)):
        q.send_batch(batch)
    # Nothing of a refused batch was sent, not even its valid messages.
    assert harness.receive_nothing(q) == []


def test_a_single_message_instead_of_a_batch_is_refused(harness: Harness) -> None:
    q = harness.queue()
    with pytest.raises(InputError, match="sequence of OutgoingMessage"):
        q.send_batch(msg("alone"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_messages": 0}, "max_messages=0"),
        ({"max_messages": 11}, "max_messages=11"),
        ({"visibility_timeout": -1}, "visibility_timeout=-1"),
        ({"visibility_timeout": 43_201}, "visibility_timeout=43201"),
        ({"visibility_timeout": float("nan")}, "visibility_timeout=nan"),
        ({"wait_seconds": 21}, "wait_seconds=21"),
        ({"wait_seconds": -0.5}, "wait_seconds=-0.5"),
    ],
)
def test_invalid_receive_arguments_are_refused(
    harness: Harness, kwargs: dict[str, Any], expected: str
) -> None:
    q = harness.queue()
    q.send_batch([msg("stays")])
    with pytest.raises(InputError, match=expected):
        q.receive(**kwargs)
    # The refused call took nothing: the message is still there for a proper receive.
    assert [m.body for m in harness.receive_until(q, bool, 5)] == ["stays"]


def test_receive_returns_at_most_max_messages(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg(f"m{i}", group=f"g{i}") for i in range(6)])
    first = q.receive(2, wait_seconds=1)
    assert 1 <= len(first) <= 2
    rest = harness.drain(q)
    assert sorted(m.body for m in first + rest) == [f"m{i}" for i in range(6)]


# -- deduplication ---------------------------------------------------------------------------


def test_duplicate_dedup_ids_are_accepted_but_enqueued_once(harness: Harness) -> None:
    q = harness.queue()
    first = q.send_batch([msg("original", dedup="d1")])
    again = q.send_batch([msg("resent", dedup="d1"), msg("other", group="h", dedup="d2")])
    assert len(first) == 1 and len(again) == 2
    # Within one batch too: the second entry with the same id is a duplicate.
    q.send_batch([msg("twin-a", group="t", dedup="d3"), msg("twin-b", group="t", dedup="d3")])
    bodies = sorted(m.body for m in harness.drain(q))
    assert bodies == ["original", "other", "twin-a"]


def test_dedup_ids_hold_after_the_message_is_deleted(harness: Harness) -> None:
    harness.skip_on_moto("dedup_after_delete")
    q = harness.queue()
    q.send_batch([msg("first", dedup="same")])
    assert [m.body for m in harness.drain(q)] == ["first"]
    q.send_batch([msg("second", dedup="same")])  # within the 5-minute window
    assert harness.receive_nothing(q) == []


# -- FIFO groups -----------------------------------------------------------------------------


def test_messages_of_a_group_arrive_in_order_across_batches(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("A1", "A"), msg("B1", "B"), msg("A2", "A")])
    q.send_batch([msg("A3", "A"), msg("C1", "C"), msg("B2", "B"), msg("A4", "A")])
    q.send_batch([msg("B3", "B"), msg("A5", "A")])
    seen: dict[str, list[str]] = defaultdict(list)
    for m in harness.drain(q):
        seen[m.group_id].append(m.body)
    assert seen == {
        "A": ["A1", "A2", "A3", "A4", "A5"],
        "B": ["B1", "B2", "B3"],
        "C": ["C1"],
    }


def test_one_receive_may_return_several_of_a_group_but_only_in_order(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("A1", "A"), msg("A2", "A"), msg("A3", "A")])
    batch = harness.receive_until(q, bool, 5)
    bodies = [m.body for m in batch]
    assert bodies and bodies == ["A1", "A2", "A3"][: len(bodies)]
    # Whatever of group A this receive left behind waits until these are deleted.
    assert harness.receive_nothing(q) == []
    q.delete([m.receipt_handle for m in batch])
    assert bodies + [m.body for m in harness.drain(q)] == ["A1", "A2", "A3"]


def test_a_group_with_a_message_in_flight_delivers_nothing_else(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("A1", "A"), msg("A2", "A"), msg("B1", "B")])
    (a1,) = q.receive(1, wait_seconds=1)
    assert a1.body == "A1"  # the oldest message of the queue comes first
    # Other groups go on; group A stays blocked while A1 is in flight.
    others = harness.receive_until(q, bool, 5)
    assert [m.body for m in others] == ["B1"]
    q.delete([others[0].receipt_handle])
    assert harness.receive_nothing(q) == []
    # Once A1 is deleted, A2 comes.
    q.delete([a1.receipt_handle])
    assert [m.body for m in harness.receive_until(q, bool, 5)] == ["A2"]


def test_an_expired_message_comes_back_before_the_rest_of_its_group(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("A1", "A"), msg("A2", "A")])
    (a1,) = q.receive(1, visibility_timeout=harness.tick, wait_seconds=1)
    assert a1.body == "A1" and a1.receive_count == 1
    again = harness.receive_until(q, bool, 10 + harness.tick, visibility_timeout=30)
    assert [m.body for m in again][:1] == ["A1"]
    assert again[0].receive_count == 2
    assert again[0].receipt_handle != a1.receipt_handle
    assert again[0].message_id == a1.message_id


# -- visibility --------------------------------------------------------------------------------


def test_a_received_message_is_hidden_until_its_visibility_timeout_ends(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("hide-me")])
    start = harness.clock.monotonic()
    (m,) = q.receive(1, visibility_timeout=harness.tick * 2, wait_seconds=1)
    assert q.receive(10) == []
    back = harness.receive_until(q, bool, 10 + harness.tick * 2)
    assert [x.body for x in back] == ["hide-me"]
    assert harness.clock.monotonic() - start >= harness.tick * 2
    assert back[0].receive_count == 2


def test_change_visibility_extends_and_ends_a_hide(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("extend-me")])
    (m,) = harness.receive_until(q, bool, 5, visibility_timeout=harness.tick)
    q.change_visibility(m.receipt_handle, 60)
    harness.clock.sleep(harness.tick * 2 + 0.2)
    assert q.receive(10) == []  # still hidden: the extension counts from the call
    q.change_visibility(m.receipt_handle, 0)
    back = harness.receive_until(q, bool, 10)
    assert [x.body for x in back] == ["extend-me"]


def test_change_visibility_refuses_bad_timeouts_and_unknown_handles(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("x")])
    (m,) = harness.receive_until(q, bool, 5)
    with pytest.raises(InputError, match="timeout=43201"):
        q.change_visibility(m.receipt_handle, 43_201)
    with pytest.raises(InputError, match="timeout=-1"):
        q.change_visibility(m.receipt_handle, -1)
    with pytest.raises(StaleReceiptError):
        q.change_visibility("not-a-receipt-handle", 10)
    q.delete([m.receipt_handle])
    with pytest.raises(StaleReceiptError):
        q.change_visibility(m.receipt_handle, 10)


def test_an_expired_receipt_handle_cannot_delete_or_extend(harness: Harness) -> None:
    harness.skip_on_moto("stale_receipt")
    q = harness.queue()
    q.send_batch([msg("slow")])
    (old,) = harness.receive_until(q, bool, 5, visibility_timeout=harness.tick)
    new = harness.receive_until(q, bool, 10 + harness.tick, visibility_timeout=30)
    assert [m.message_id for m in new] == [old.message_id]
    with pytest.raises(QueueBatchError) as caught:
        q.delete([old.receipt_handle])
    assert set(caught.value.failures) == {old.receipt_handle}
    with pytest.raises(StaleReceiptError):
        q.change_visibility(old.receipt_handle, 60)
    # The message is intact, held by its current receive, which can still delete it.
    assert harness.eventually(q.stats, lambda s: s.in_flight == 1).in_flight == 1
    q.delete([new[0].receipt_handle])
    assert harness.eventually(q.stats, lambda s: s == QueueStats(0, 0, 0)) == QueueStats(0, 0, 0)


# -- delete ------------------------------------------------------------------------------------


def test_delete_reports_bad_handles_after_deleting_the_good_ones(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("a", "A"), msg("b", "B")])
    got = harness.collect(q, 2)
    assert len(got) == 2
    handles = [got[0].receipt_handle, "bogus-handle", got[1].receipt_handle]
    with pytest.raises(QueueBatchError) as caught:
        q.delete(handles)
    assert set(caught.value.failures) == {"bogus-handle"}
    assert sorted(caught.value.succeeded) == sorted([got[0].receipt_handle, got[1].receipt_handle])
    assert harness.eventually(q.stats, lambda s: s == QueueStats(0, 0, 0)) == QueueStats(0, 0, 0)
    assert harness.receive_nothing(q) == []


def test_delete_takes_more_than_ten_handles_and_an_empty_list(harness: Harness) -> None:
    q = harness.queue()
    q.delete([])  # nothing to do
    for start in (0, 10):
        q.send_batch([msg(f"m{i}", f"g{i}") for i in range(start, start + 10)])
    received = harness.collect(q, 20)
    q.delete([m.receipt_handle for m in received])
    assert harness.receive_nothing(q) == []
    with pytest.raises(InputError, match="not a single str"):
        q.delete("a-handle")  # type: ignore[arg-type]


# -- long polling ------------------------------------------------------------------------------


def test_long_poll_returns_as_soon_as_a_message_arrives(harness: Harness) -> None:
    q = harness.queue()
    start = harness.clock.monotonic()
    with harness.later(0.5, lambda: q.send_batch([msg("late")])):
        got = q.receive(10, wait_seconds=10)
    elapsed = harness.clock.monotonic() - start
    assert [m.body for m in got] == ["late"]
    assert elapsed < 8, f"the receive waited {elapsed:.1f}s instead of waking on the send"


def test_long_poll_on_an_empty_queue_waits_then_returns_nothing(harness: Harness) -> None:
    q = harness.queue()
    start = harness.clock.monotonic()
    assert q.receive(10, wait_seconds=1) == []
    assert harness.clock.monotonic() - start >= 0.9


# -- dead letters --------------------------------------------------------------------------


def test_a_message_moves_to_the_dlq_on_the_receive_after_max_receives(harness: Harness) -> None:
    q = harness.queue(max_receives=2)
    q.send_batch([msg("poison", "A"), msg("behind", "A"), msg("other", "B")])
    deliveries: list[tuple[str, int]] = []
    # One message per receive; the consumer fails on "poison" (gives it back at once) and
    # handles the rest. Receives 1 and 2 deliver poison; receive 3 moves it to the DLQ
    # and goes on with the message behind it.
    for _ in range(10):
        batch = q.receive(1, visibility_timeout=30, wait_seconds=1)
        if not batch:
            break
        (m,) = batch
        deliveries.append((m.body, m.receive_count))
        if m.body == "poison":
            q.change_visibility(m.receipt_handle, 0)
        else:
            q.delete([m.receipt_handle])
    assert [d for d in deliveries if d[0] == "poison"] == [("poison", 1), ("poison", 2)]
    # The poison message no longer blocks its group, nor the queue.
    assert sorted(d for d in deliveries if d[0] != "poison") == [("behind", 1), ("other", 1)]
    assert deliveries.index(("behind", 1)) > deliveries.index(("poison", 2))
    dead = q.dead_letters()
    assert [d.body for d in dead] == ["poison"]
    assert dead[0].group_id == "A"
    assert dead[0].receive_count >= 2  # exactly 2 locally; SQS counts the listing's peek too
    assert dead[0].error and "without a delete" in dead[0].error
    stats = harness.eventually(q.stats, lambda s: s == QueueStats(0, 0, 1))
    assert stats == QueueStats(visible=0, in_flight=0, dead=1)


@pytest.mark.parametrize("behind", ["same group", "other group"])
def test_a_receive_that_dead_letters_a_head_delivers_what_is_behind_it(
    harness: Harness, behind: str
) -> None:
    # Found by tests/integration/test_local_queue_model.py: a receive of one message that
    # moved an exhausted head to the DLQ returned nothing although another message was
    # deliverable, so a short poll saw an empty queue.
    q = harness.queue(max_receives=1)
    q.send_batch([msg("poison", "A"), msg("next", "A" if behind == "same group" else "B")])
    first = q.receive(1, visibility_timeout=30, wait_seconds=harness.quiet)
    assert [m.body for m in first] == ["poison"]
    q.change_visibility(first[0].receipt_handle, 0)
    batch = q.receive(1, visibility_timeout=30, wait_seconds=harness.quiet)
    assert [m.body for m in batch] == ["next"]
    assert [d.body for d in q.dead_letters()] == ["poison"]


def test_dead_letter_moves_a_message_at_once_with_its_error(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("bad", "A"), msg("next", "A")])
    (bad,) = q.receive(1, wait_seconds=1)
    assert bad.body == "bad"
    q.dead_letter(bad, "price is negative: -3.50")
    dead = q.dead_letters()
    assert len(dead) == 1
    assert isinstance(dead[0], DeadLetter)
    assert (dead[0].message_id, dead[0].body, dead[0].group_id) == (bad.message_id, "bad", "A")
    assert dead[0].error == "price is negative: -3.50"
    assert dead[0].receive_count == 1
    assert dead[0].dead_at is not None
    # Its group is unblocked at once.
    assert [m.body for m in harness.receive_until(q, bool, 5)] == ["next"]
    stats = harness.eventually(q.stats, lambda s: s.dead == 1 and s.in_flight == 1)
    assert (stats.visible, stats.in_flight, stats.dead) == (0, 1, 1)


def test_dead_letter_keeps_long_and_odd_errors_readable(harness: Harness) -> None:
    q = harness.queue()
    # A 200 KB body: on SQS the error travels as a message attribute, which must fit in the
    # 256 KiB beside the body (an error next to a body closer to the limit is cut further).
    q.send_batch([msg("x" * 200_000, dedup="huge"), msg("small", "B", "s")])
    got = harness.collect(q, 2)
    assert len(got) == 2
    error = "Traceback\x00 with a NUL\n" + "é" * 10_000
    for m in got:
        q.dead_letter(m, error)
    dead = {d.body[:5]: d for d in q.dead_letters()}
    assert set(dead) == {"xxxxx", "small"}
    for d in dead.values():
        assert d.error is not None
        assert d.error.startswith("Traceback\ufffd with a NUL\n")
        assert len(d.error) <= MAX_ERROR_CHARS
        assert d.error.endswith("[truncated]")


def test_dead_letter_of_a_deleted_message_is_refused(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg("done")])
    (m,) = harness.receive_until(q, bool, 5)
    q.delete([m.receipt_handle])
    with pytest.raises(StaleReceiptError):
        q.dead_letter(m, "too late")
    assert q.dead_letters() == []


def test_redrive_moves_dead_letters_back_with_a_fresh_count(harness: Harness) -> None:
    q = harness.queue()
    assert q.redrive() == 0
    q.send_batch([msg(f"d{i}", f"g{i}") for i in range(3)])
    got = harness.collect(q, 3)
    assert len(got) == 3
    for m in got:
        q.dead_letter(m, f"failed {m.body}")
    assert len(q.dead_letters()) == 3

    assert q.redrive(limit=1) == 1
    assert len(q.dead_letters()) == 2
    assert q.redrive() == 2
    assert q.dead_letters() == []

    back = harness.drain(q)
    assert sorted(m.body for m in back) == ["d0", "d1", "d2"]
    assert all(m.receive_count == 1 for m in back)
    assert sorted(m.group_id for m in back) == ["g0", "g1", "g2"]
    assert harness.eventually(q.stats, lambda s: s == QueueStats(0, 0, 0)) == QueueStats(0, 0, 0)


def test_dlq_listing_and_redrive_refuse_bad_limits(harness: Harness) -> None:
    q = harness.queue()
    with pytest.raises(InputError, match="limit=0"):
        q.dead_letters(0)
    with pytest.raises(InputError, match="limit=-1"):
        q.redrive(-1)


def test_dlq_listing_honours_its_limit(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg(f"d{i}", f"g{i}") for i in range(4)])
    got = harness.collect(q, 4)
    for m in got:
        q.dead_letter(m, "x")
    assert len(q.dead_letters(limit=2)) == 2
    assert len(q.dead_letters()) == 4  # listing does not consume


# -- stats -----------------------------------------------------------------------------------


def test_stats_count_visible_in_flight_and_dead(harness: Harness) -> None:
    q = harness.queue()
    q.send_batch([msg(f"s{i}", f"g{i}") for i in range(4)])
    expected = QueueStats(visible=4, in_flight=0, dead=0)
    assert harness.eventually(q.stats, lambda s: s == expected) == expected
    (first,) = q.receive(1, wait_seconds=1)
    (second,) = q.receive(1, wait_seconds=1)
    q.dead_letter(second, "broken")
    expected = QueueStats(visible=2, in_flight=1, dead=1)
    assert harness.eventually(q.stats, lambda s: s == expected) == expected
    q.delete([first.receipt_handle])
    expected = QueueStats(visible=2, in_flight=0, dead=1)
    assert harness.eventually(q.stats, lambda s: s == expected) == expected


# -- concurrency -------------------------------------------------------------------------------


def _run_consumers(
    spec: QueueSpec, workers: int, seconds: float, *, delete: bool, visibility: float,
    processes: bool, until_idle: bool = False,
) -> list[tuple[Any, ...]]:
    if processes:
        ctx = multiprocessing.get_context("spawn")
        results: Any = ctx.Queue()
        start: Any = ctx.Barrier(workers)
        runners: list[Any] = [
            ctx.Process(
                target=consume,
                args=(spec, results, seconds, delete, visibility, f"p{i}", until_idle, start),
            )
            for i in range(workers)
        ]
    else:
        import queue as stdlib_queue

        results = stdlib_queue.Queue()
        start = threading.Barrier(workers)
        runners = [
            threading.Thread(
                target=consume,
                args=(spec, results, seconds, delete, visibility, f"t{i}", until_idle, start),
            )
            for i in range(workers)
        ]
    for r in runners:
        r.start()
    deliveries: list[tuple[Any, ...]] = []
    done = 0
    # Generous: spawned consumers import psycopg/boto3 first, which is slow on a busy machine.
    deadline = time.monotonic() + seconds + 240
    while done < workers and time.monotonic() < deadline:
        item = results.get(timeout=max(1.0, deadline - time.monotonic()))
        if item[0] == "done":
            done += 1
        else:
            deliveries.append(item)
    for r in runners:
        r.join(timeout=30)
    assert done == workers, "a consumer did not finish"
    if processes:
        assert all(r.exitcode == 0 for r in runners), [r.exitcode for r in runners]
    return deliveries


@pytest.mark.slow
@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_concurrent_consumers_get_every_message_exactly_once(
    harness: Harness, processes: bool
) -> None:
    harness.skip_on_moto("concurrent_receive")
    spec = harness.concurrent_spec(visibility_timeout=30, processes=processes)
    producer = spec.build()
    harness.opened.append(producer)
    groups, per_group = 20, 4
    sent: dict[str, tuple[str, int]] = {}
    for k in range(per_group):
        batch = [msg(f"{g}-{k}", f"g{g}") for g in range(groups)]
        for start in range(0, len(batch), 10):
            chunk = batch[start : start + 10]
            for m, mid in zip(chunk, producer.send_batch(chunk), strict=True):
                sent[mid] = (m.group_id, k)
    deliveries = _run_consumers(
        spec, 3, 30.0, delete=True, visibility=30, processes=processes, until_idle=True
    )

    delivered_ids = [d[1] for d in deliveries]
    assert sorted(delivered_ids) == sorted(sent), "a message was lost or delivered twice"
    assert all(d[4] == 1 for d in deliveries), "a message was received more than once"
    assert len({d[0] for d in deliveries}) > 1, "only one consumer ever got messages"
    # FIFO per group across consumers: message k+1 came after k in the same receive, or in a
    # receive that ended after k was deleted.
    by_group: dict[str, list[tuple[int, str, float, int, float, float]]] = defaultdict(list)
    for worker, mid, _body, group, _count, position, before, after, deleted_at in deliveries:
        by_group[group].append((sent[mid][1], worker, before, position, after, deleted_at))
    for group, items in by_group.items():
        items.sort()
        assert [item[0] for item in items] == list(range(per_group))
        for first, second in pairwise(items):
            same_receive = first[1:3] == second[1:3]
            in_order = second[3] > first[3] if same_receive else second[4] >= first[5]
            assert in_order, f"{group}: message {second[0]} overtook {first[0]}: {items}"
    empty = QueueStats(0, 0, 0)
    assert harness.eventually(producer.stats, lambda s: s == empty) == empty


@pytest.mark.slow
def test_no_message_is_delivered_twice_while_hidden(harness: Harness) -> None:
    """Consumers that never delete: each message comes back only after its hide ends."""
    harness.skip_on_moto("concurrent_receive")
    visibility = harness.tick
    spec = harness.concurrent_spec(max_receives=1000, visibility_timeout=visibility)
    producer = spec.build()
    harness.opened.append(producer)
    ids = producer.send_batch([msg(f"h{i}", f"g{i}") for i in range(10)])
    ids += producer.send_batch([msg(f"h{i}", f"g{i}") for i in range(10, 16)])
    deliveries = _run_consumers(
        spec, 4, visibility * 3.5, delete=False, visibility=visibility, processes=False
    )
    per_message: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for _worker, mid, _body, _group, count, _position, before, after, _ in deliveries:
        per_message[mid].append((count, before, after))
    assert set(per_message) == set(ids), "a message was never delivered"
    redelivered = 0
    for mid, items in per_message.items():
        items.sort()
        counts = [c for c, _, _ in items]
        assert counts == list(range(1, len(counts) + 1)), f"{mid}: receive counts {counts}"
        for (_, before, _), (_, _, next_after) in pairwise(items):
            # The next receive ended at least one visibility timeout after this one began.
            assert next_after >= before + visibility, f"{mid} was delivered twice while hidden"
            redelivered += 1
    assert redelivered > 0, "no message came back after its visibility timeout"
