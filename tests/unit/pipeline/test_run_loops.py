"""The indexer's and the relay's run loops back off 0.5, 1, 2 ... seconds up to a maximum while
their dependencies are down, and start again from 0.5 s once a step succeeds (fake clock)."""

from __future__ import annotations

import threading
from datetime import timedelta

from refarch.fakes import FakeClock, FakeProductsDatabase, FakeQueue
from refarch.pipeline import indexer, relay
from tests.unit.pipeline.fake_pipeline import FakePipeline, StopWaits

#: 0.5 s doubling, capped at the default max_backoff of 30 s.
BACKOFFS = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]


def test_indexer_run_backs_off_to_the_maximum_and_resets_after_a_good_step() -> None:
    pipeline = FakePipeline(max_receives=5)
    first = pipeline.insert("FIRST")
    pipeline.relay()
    stop = threading.Event()
    clock = StopWaits(pipeline.clock, stop)
    worker = pipeline.new_worker(clock=clock)
    pipeline.index.down = True
    later = pipeline.clock.call_later
    later(100, lambda: setattr(pipeline.index, "down", False))  # the outage ends at 100 s

    second: list[int] = []

    def second_outage() -> None:  # at 130 s a change arrives while the index is down again
        second.append(pipeline.insert("SECOND"))
        pipeline.relay()
        pipeline.index.down = True

    later(130, second_outage)
    later(140, stop.set)
    indexer.run(worker, stop=stop)

    # Failed at 0 s; healthy again at the check after 0.5+1+2+4+8+16+30+30+30 = 121.5 s.
    # Failed again at 130 s: 0.5 s again, and so on, until stop (at 140 s) ends the 8 s wait.
    assert clock.waits == BACKOFFS + [30.0, 30.0] + BACKOFFS[:5]
    # The outages burned no receives: FIRST was held through the first one (received once, ever),
    # SECOND through the second until stop released it (once).
    counts = [(m.group_id, m.receive_count) for m in pipeline.queue.deliveries]
    assert counts == [(f"product-{first}", 1), (f"product-{second[0]}", 1)]
    pipeline.index.down = False
    assert set(pipeline.index_state()) == {first}
    assert pipeline.queue.dead_letters() == []
    assert worker._conn is None  # run() closed the worker when it stopped


def test_relay_run_backs_off_while_the_database_is_down_and_resets_once_connected() -> None:
    clock = FakeClock()
    db = FakeProductsDatabase(clock=clock)
    queue = FakeQueue(clock=clock)
    pid = db.insert("RELAYED")
    stop = threading.Event()
    waits = StopWaits(clock, stop)
    db.down = True
    clock.call_later(20, lambda: setattr(db, "down", False))
    clock.call_later(60, lambda: setattr(db, "down", True))
    clock.call_later(100, stop.set)
    relay.run(db.connect, queue, batch_size=10, poll_seconds=1.0, stop=stop, clock=waits)
    # Down until 20 s: connected at 0.5+1+2+4+8+16 = 31.5 s. Down again at 60 s: 0.5 s again.
    assert waits.waits == BACKOFFS[:6] + BACKOFFS
    (message,) = queue.receive(10)  # published while it was connected
    assert message.group_id == f"product-{pid}"
    assert db.outbox == []


def test_relay_run_polls_between_steps_when_no_wakeup_comes() -> None:
    clock = FakeClock()
    db = FakeProductsDatabase(clock=clock)
    queue = FakeQueue(clock=clock)
    stop = threading.Event()
    started = clock.now()
    clock.call_later(12.25, lambda: db.insert("LATE"))
    clock.call_later(30, stop.set)
    relay.run(db.connect, queue, batch_size=10, poll_seconds=5.0, stop=stop, clock=clock)
    (message,) = queue.receive(10)
    # No NOTIFY reaches a fake connection: the change is found by the next poll, at 15 s.
    assert message.sent_at == started + timedelta(seconds=15)
    assert clock.now() == started + timedelta(seconds=30)  # stop ended the wait at once
