"""The indexer's hold on a batch: heartbeat renewals, stalls, stale receipts (on a fake clock).

The heartbeat renews every third of the visibility timeout; a batch whose last good renewal is
older than 0.8 x the timeout (the process stalled, its heartbeat with it) or whose receipt went
stale is not written: another consumer may hold those messages now.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from refarch.errors import QueueError, StaleReceiptError
from refarch.fakes import FakeClock, FakeQueue
from refarch.pipeline.indexer import Hold, IndexedState, IndexerWorker
from refarch.queue.port import OutgoingMessage, QueueStats, ReceivedMessage
from tests.unit.pipeline.fake_pipeline import FakePipeline, RecordingQueue


class FrozenHold(Hold):
    """A process paused (SIGSTOP, a VM hiccup): its heartbeat cannot run either."""

    def beat(self) -> None:
        pass


def _received(queue: FakeQueue, count: int = 1, timeout: float = 30) -> list[ReceivedMessage]:
    queue.send_batch([OutgoingMessage(f"m{i}", f"g{i}", f"d{i}") for i in range(count)])
    return queue.receive(10, visibility_timeout=timeout)


# -- the hold on its own (no indexer) ---------------------------------------------------------


def test_the_heartbeat_renews_every_third_of_the_timeout_while_held() -> None:
    clock = FakeClock()
    queue = RecordingQueue(clock=clock)
    messages = _received(queue, 2)
    start = clock.monotonic()
    with Hold(queue, messages, 30.0, clock=clock) as hold:
        clock.advance(35)
        assert hold.renewed_at == start + 30
    clock.advance(100)  # after the block: no more renewals
    times = sorted({at - start for at, _, _ in queue.visibility_changes})
    assert times == [10, 20, 30]
    assert all(timeout == 30.0 for _, _, timeout in queue.visibility_changes)
    assert len(queue.visibility_changes) == 6  # both messages, each time
    assert queue.stats().in_flight == 0  # the last renewal (at 30 s) ran out at 60 s


def test_renew_marks_stale_receipts_and_lost_names_their_products() -> None:
    clock = FakeClock()
    queue = FakeQueue(clock=clock)
    first, second = _received(queue, 2)
    queue.change_visibility(first.receipt_handle, 0)  # its hide ended ...
    (again,) = queue.receive(1)  # ... and another consumer holds it now
    hold = Hold(queue, [first, second], 30.0, clock=clock)  # no thread: renew by hand
    hold.renew()
    assert hold.stale == {first.receipt_handle}
    assert hold.lost({1: [first], 2: [second]}) == {1}
    queue.delete([again.receipt_handle, second.receipt_handle])  # both handles still current


def test_a_hold_that_cannot_reach_the_queue_is_lost_after_0_8_of_the_timeout() -> None:
    clock = FakeClock()

    class Unreachable(FakeQueue):
        def change_visibility(self, receipt_handle: str, timeout: float) -> None:
            raise QueueError("the queue database failed")

    queue = Unreachable(clock=clock)
    (message,) = _received(queue)
    hold = Hold(queue, [message], 30.0, clock=clock)
    clock.advance(20)
    hold.renew()  # fails: the hold is not renewed
    assert hold.lost({1: [message]}) == set()
    clock.advance(4.5)  # 24.5 s since the receive, more than 0.8 x 30 s
    assert hold.lost({1: [message]}) == {1}


@pytest.mark.parametrize(("stall", "lost"), [(23.5, False), (24.5, True)])
def test_lost_after_a_stall_of_more_than_0_8_of_the_timeout(stall: float, lost: bool) -> None:
    clock = FakeClock()
    queue = FakeQueue(clock=clock)
    (message,) = _received(queue)
    with FrozenHold(queue, [message], 30.0, clock=clock) as hold:
        clock.advance(stall)
        assert hold.lost({7: [message]}) == ({7} if lost else set())


# -- the hold inside a step --------------------------------------------------------------------


def test_a_slow_batch_stays_hidden_because_the_heartbeat_renews_it(pipeline: FakePipeline) -> None:
    pid = pipeline.insert("SLOW")
    pipeline.relay()
    other = pipeline.queue  # what another consumer would receive from

    class SlowWorker(IndexerWorker):
        seen_by_other: list[ReceivedMessage] | None = None

        def fetch_state(self, product_ids: Sequence[int]) -> dict[int, IndexedState]:
            pipeline.clock.advance(50)  # longer than the 30 s visibility timeout ...
            self.seen_by_other = other.receive(10)  # ... yet nobody else can take the batch
            pipeline.clock.advance(50)
            return super().fetch_state(product_ids)

    slow = pipeline.new_worker(SlowWorker)
    received_at = pipeline.clock.monotonic()
    result = slow.step()
    assert slow.seen_by_other == []
    assert (result.embedded, result.abandoned) == (1, 0)
    renewals = [at - received_at for at, _, _ in pipeline.queue.visibility_changes]
    assert renewals == [10.0 * i for i in range(1, 11)]
    assert set(pipeline.index_state()) == {pid}
    assert pipeline.queue.stats() == QueueStats(0, 0, 0)  # acknowledged
    slow.close()


def test_invariant_3_a_stalled_worker_whose_hold_expired_does_not_write(pipeline: FakePipeline) -> None:
    """Moved from tests/integration/pipeline/test_indexer.py (it slept past a 1 s timeout)."""
    pid = pipeline.insert("SLOW", description="original")
    pipeline.sync()
    before = pipeline.index_state()[pid]
    pipeline.db.update(pid, description="changed")
    pipeline.relay()

    class SlowWorker(IndexerWorker):
        def hold(self, messages: list[ReceivedMessage]) -> Hold:
            return FrozenHold(self.queue, messages, self.visibility_timeout, self._received_at,
                              clock=self.clock)

        def fetch_state(self, product_ids: Sequence[int]) -> dict[int, IndexedState]:
            pipeline.clock.sleep(1.6)  # longer than the 1 s visibility timeout: another consumer may hold it
            return super().fetch_state(product_ids)

    slow = pipeline.new_worker(SlowWorker, batch_size=8, visibility_timeout=1.0, max_receives=5)
    result = slow.step()
    assert result.abandoned == 1 and result.embedded == 0
    assert pipeline.index_state()[pid] == before  # nothing written
    slow.close()
    pipeline.clock.sleep(0.2)
    pipeline.index_all()  # the message came back; a healthy worker finishes the job
    assert pipeline.index_state()[pid] == pipeline.postgres_state()[pid]


def test_a_batch_whose_receipt_went_stale_is_not_written(pipeline: FakePipeline) -> None:
    pid = pipeline.insert("STALE", description="original")
    pipeline.sync()
    before = pipeline.index_state()[pid]
    pipeline.db.update(pid, description="changed")
    pipeline.relay()
    taken: list[ReceivedMessage] = []

    class OvertakenWorker(IndexerWorker):
        def fetch_state(self, product_ids: Sequence[int]) -> dict[int, IndexedState]:
            mine = pipeline.queue.deliveries[-1]
            pipeline.queue.change_visibility(mine.receipt_handle, 0)  # its hide ended early ...
            taken.extend(pipeline.queue.receive(10))  # ... another consumer took it ...
            pipeline.clock.advance(10)  # ... and the heartbeat finds the receipt stale
            return super().fetch_state(product_ids)

    worker = pipeline.new_worker(OvertakenWorker)
    result = worker.step()
    assert (result.abandoned, result.embedded) == (1, 0)
    assert pipeline.index_state()[pid] == before  # not written
    assert [m.group_id for m in taken] == [f"product-{pid}"]
    pipeline.queue.delete([taken[0].receipt_handle])  # the other consumer's hold is intact
    worker.close()


def test_a_hold_thread_is_started_only_by_entering_it() -> None:
    clock = FakeClock()
    queue = RecordingQueue(clock=clock)
    hold = Hold(queue, _received(queue), 30.0, clock=clock)
    clock.advance(100)
    assert queue.visibility_changes == []  # built, not entered: no heartbeat
    with pytest.raises(StaleReceiptError):
        queue.change_visibility(hold.messages[0].receipt_handle, 30)  # expired at 30 s
