"""Outages against poison: the indexer holds a batch through an outage and isolates a poison
product by bisection (fakes, fake clock; each test runs in milliseconds).

An outage (index writes failing with reads fine, the index or the database down) must cost no
receive and dead-letter nothing however long it lasts: the batch is held (heartbeat), write
probes run until the index writes again, then the same batch is finished. A rejection or
another failure of the batch is split in halves until the failing product stands alone; only
it is retried and dead-lettered, with an error naming it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from refarch.errors import IndexRejectedError, IndexServiceError, QueueError, RefarchError
from refarch.fakes import FakeEmbedder, FakeVectorIndex
from refarch.pipeline import indexer
from refarch.pipeline.indexer import PROBE_NAMESPACE, is_outage
from refarch.queue.port import QueueStats
from tests.unit.pipeline.fake_pipeline import FakePipeline, StopWaits


def _outage_longer_than_the_receive_limit(pipeline: FakePipeline) -> float:
    """Seconds of outage: well past max_receives x visibility timeout."""
    return pipeline.max_receives * pipeline.visibility_timeout * 2 + 7


def test_index_writes_failing_longer_than_the_receive_limit_spend_one_receive_and_no_dlq(
    pipeline: FakePipeline,
) -> None:
    ids = [pipeline.insert(f"OK-{i}") for i in range(5)]
    pipeline.relay()
    pipeline.index.writes_down = True  # reads answer: a read-only health check would pass
    outage = _outage_longer_than_the_receive_limit(pipeline)
    pipeline.clock.call_later(outage, lambda: setattr(pipeline.index, "writes_down", False))
    started = pipeline.clock.monotonic()
    result = pipeline.worker.step()
    assert pipeline.clock.monotonic() - started >= outage  # held right through it
    assert (result.received, result.embedded, result.dead_lettered) == (5, 5, 0)
    assert result.outages == 1 and result.probes >= 5
    assert {m.receive_count for m in pipeline.queue.deliveries} == {1}  # one receive, ever
    assert pipeline.queue.stats() == QueueStats(visible=0, in_flight=0, dead=0)
    assert pipeline.index_state() == pipeline.postgres_state()
    assert set(pipeline.index_state()) == set(ids)
    assert pipeline.index.in_namespace(PROBE_NAMESPACE).count() == 0  # the probe cleaned up


def test_run_survives_a_write_outage_without_dead_letters(pipeline: FakePipeline) -> None:
    """Through run(): the health check before receiving again must probe a write, not a read."""
    ids = [pipeline.insert(f"OK-{i}") for i in range(3)]
    pipeline.relay()
    stop = threading.Event()
    pipeline.index.writes_down = True
    outage = _outage_longer_than_the_receive_limit(pipeline)
    pipeline.clock.call_later(outage, lambda: setattr(pipeline.index, "writes_down", False))
    pipeline.clock.call_later(outage + 60, stop.set)
    indexer.run(pipeline.new_worker(), stop=stop)
    assert pipeline.queue.dead_letters() == []
    assert max(m.receive_count for m in pipeline.queue.deliveries) == 1
    assert pipeline.index_state() == pipeline.postgres_state() and set(pipeline.index_state()) == set(ids)


def test_a_database_outage_holds_the_batch_too(pipeline: FakePipeline) -> None:
    pid = pipeline.insert("DB")
    pipeline.relay()
    pipeline.db.down = True
    pipeline.clock.call_later(200, lambda: setattr(pipeline.db, "down", False))
    result = pipeline.worker.step()
    assert (result.embedded, result.dead_lettered, result.outages) == (1, 0, 1)
    assert pipeline.queue.deliveries[-1].receive_count == 1
    assert set(pipeline.index_state()) == {pid}


def test_stop_during_an_outage_releases_the_batch_at_once_and_dead_letters_nothing(
    pipeline: FakePipeline,
) -> None:
    pid = pipeline.insert("HELD")
    pipeline.relay()
    pipeline.index.down = True
    stop = threading.Event()
    pipeline.clock.call_later(45, stop.set)
    result = pipeline.worker.step(stop=stop)
    assert (result.released, result.dead_lettered, result.embedded) == (1, 0, 0)
    assert pipeline.queue.stats() == QueueStats(visible=1, in_flight=0, dead=0)  # visible now
    pipeline.index.down = False
    assert pipeline.worker.step().embedded == 1
    assert pipeline.queue.deliveries[-1].receive_count == 2
    assert set(pipeline.index_state()) == {pid}


def test_a_hold_lost_during_an_outage_raises_and_dead_letters_nothing(pipeline: FakePipeline) -> None:
    pipeline.insert("LOST")
    pipeline.relay()
    pipeline.index.down = True
    queue = pipeline.queue
    real_change = queue.change_visibility

    def unreachable(handle: str, timeout: float) -> None:
        raise QueueError("the queue database failed")

    queue.change_visibility = unreachable  # type: ignore[method-assign]
    with pytest.raises(IndexServiceError, match="unreachable"):
        pipeline.worker.step()
    queue.change_visibility = real_change  # type: ignore[method-assign]
    assert queue.dead_letters() == []


def test_the_probe_is_a_write_a_read_only_index_fails_it(pipeline: FakePipeline) -> None:
    assert pipeline.worker.healthy()
    pipeline.index.writes_down = True
    assert pipeline.index.count() == 0  # reads answer ...
    assert not pipeline.worker.healthy()  # ... the probe does not


class CountingIndex(FakeVectorIndex):
    """Rejects (400) any upsert that carries a poisoned id; counts upsert requests."""

    def __init__(self, poisoned: set[str]) -> None:
        super().__init__(dimension=384)
        self.poisoned = poisoned
        self.upserts = 0

    def upsert(self, records: Sequence[Any]) -> int:
        self.upserts += 1
        bad = sorted({r[0] for r in records} & self.poisoned)
        if bad:
            raise IndexRejectedError(f"vector index refused the upsert: (400) bad record {bad[0]}", 400)
        return super().upsert(records)


def test_a_rejected_batch_is_bisected_until_the_poison_stands_alone(pipeline: FakePipeline) -> None:
    good = [pipeline.insert(f"OK-{i}") for i in range(31)]
    poison = pipeline.insert("POISON")
    pipeline.relay()
    index = CountingIndex({str(poison)})
    worker = pipeline.new_worker()
    worker.index = index
    result = worker.step()
    assert (result.received, result.embedded, result.failed) == (32, 31, 1)
    # 1 + 2 per level of the 5 halvings of 32: 11 requests, not the 33 of one-by-one.
    assert index.upserts <= 11
    assert set(index.list_ids()) == {str(pid) for pid in good}
    assert result.dead_lettered == 0  # retried with backoff first (max_receives 3)
    for _ in range(3):
        pipeline.clock.advance(5)
        worker.step()
    (letter,) = pipeline.queue.dead_letters()
    assert letter.group_id == f"product-{poison}"
    assert f"product {poison}: index rejected the record" in (letter.error or "")
    worker.close()


class CrashingEmbedder(FakeEmbedder):
    """A model that crashes (not a RefarchError) whenever a batch holds one particular text."""

    def __init__(self, poison_word: str) -> None:
        super().__init__()
        self.poison_word = poison_word

    def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
        if any(self.poison_word in t for t in texts):
            raise RuntimeError("model kernel crashed")
        return super().encode(texts, **kwargs)


def test_a_batch_failing_otherwise_is_bisected_and_only_the_culprit_dead_lettered() -> None:
    pipeline = FakePipeline(max_receives=1)
    good = [pipeline.insert(f"OK-{i}") for i in range(9)]
    poison = pipeline.insert("POISON", description="zzpoisonzz")
    pipeline.relay()
    worker = pipeline.new_worker()
    worker.embedder = CrashingEmbedder("zzpoisonzz")
    result = worker.step()
    assert (result.embedded, result.failed, result.dead_lettered) == (9, 1, 1)
    assert result.splits >= 3 and result.outages == 0
    (letter,) = pipeline.queue.dead_letters()
    assert letter.group_id == f"product-{poison}"
    assert (letter.error or "").startswith(f"product {poison}: indexing failed: RuntimeError")
    assert set(pipeline.index_state()) == set(good)
    assert pipeline.queue.stats() == QueueStats(visible=0, in_flight=0, dead=1)
    worker.close()


def test_an_outage_in_the_middle_of_a_bisection_resumes_with_what_is_unsettled() -> None:
    pipeline = FakePipeline(max_receives=1)
    good = [pipeline.insert(f"OK-{i}") for i in range(7)]
    poison = pipeline.insert("POISON", description="zzpoisonzz")
    pipeline.relay()
    worker = pipeline.new_worker()
    crashing = CrashingEmbedder("zzpoisonzz")
    calls = {"n": 0}

    def encode(texts: Sequence[str], **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the index goes down after the first split
            pipeline.index.down = True
            pipeline.clock.call_later(100, lambda: setattr(pipeline.index, "down", False))
        return crashing.encode(texts, **kwargs)

    worker.embedder.encode = encode  # type: ignore[method-assign]
    result = worker.step()
    assert result.outages == 1 and result.dead_lettered == 1
    assert [d.group_id for d in pipeline.queue.dead_letters()] == [f"product-{poison}"]
    assert set(pipeline.index_state()) == set(good)
    assert pipeline.queue.stats() == QueueStats(visible=0, in_flight=0, dead=1)
    worker.close()


@pytest.mark.parametrize(("error", "outage"), [
    (IndexServiceError("vector index upsert failed: (503) unavailable"), True),
    (IndexServiceError("vector index upsert failed: (429) too many requests"), True),
    (IndexServiceError("vector index upsert failed: (507) no space left on device"), True),
    (psycopg.OperationalError("connection refused"), True),
    (psycopg.InterfaceError("the connection is closed"), True),
    (IndexRejectedError("vector index refused the upsert: (400) bad metadata", 400), False),
    (RefarchError("no text to embed"), False),
    (RuntimeError("a bug"), False),
])
def test_is_outage_tells_a_dependency_down_from_a_bad_batch(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage


def test_the_probe_waits_back_off_to_the_maximum_while_a_batch_is_held() -> None:
    pipeline = FakePipeline()
    pipeline.insert("WAIT")
    pipeline.relay()
    stop = threading.Event()
    clock = StopWaits(pipeline.clock, stop)
    worker = pipeline.new_worker(clock=clock, max_probe_interval=8.0)
    pipeline.index.writes_down = True
    pipeline.clock.call_later(60, lambda: setattr(pipeline.index, "writes_down", False))
    result = worker.step(stop=stop)
    # Probes after 0.5, 1, 2, 4, 8, 8 ... s: the one at 63.5 s finds the index writing again.
    assert clock.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert result.embedded == 1 and result.probes == len(clock.waits)
    worker.close()


class ServerErrorIndex(FakeVectorIndex):
    """Answers 500 (an outage, to the port) to any upsert carrying the poisoned id; the write
    probe, which does not carry it, succeeds."""

    def __init__(self, poisoned: str) -> None:
        super().__init__(dimension=384)
        self.poisoned = poisoned

    def upsert(self, records: Sequence[Any]) -> int:
        if any(r[0] == self.poisoned for r in records):
            raise IndexServiceError("vector index upsert failed: (500) Internal error: a bug")
        return super().upsert(records)


def test_a_record_that_crashes_the_server_cannot_hold_its_batch_forever() -> None:
    """Writes work (the probe passes) yet the batch keeps failing as if the index were down:
    after a few rounds the batch is bisected and only that record fails, counted."""
    pipeline = FakePipeline(max_receives=1)
    good = [pipeline.insert(f"OK-{i}") for i in range(7)]
    crasher = pipeline.insert("CRASHER")
    pipeline.relay()
    worker = pipeline.new_worker()
    worker.index = ServerErrorIndex(str(crasher))
    result = worker.step()
    assert result.outages == indexer.OUTAGE_RETRIES
    assert (result.embedded, result.failed, result.dead_lettered) == (7, 1, 1)
    (letter,) = pipeline.queue.dead_letters()
    assert letter.group_id == f"product-{crasher}" and f"product {crasher}" in (letter.error or "")
    assert set(worker.index.list_ids()) == {str(pid) for pid in good}
    worker.close()
