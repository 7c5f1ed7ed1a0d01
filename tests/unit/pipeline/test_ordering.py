"""Duplicated, reordered and stale messages never move the index backwards (on the fakes).

A message only names a product: the indexer writes what the database holds *now*, and skips
the write when the index already holds that version or a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from refarch.embeddings import product_text
from refarch.fakes import FakeEmbedder, FakeQueue
from refarch.pipeline.changes import ProductChange
from refarch.pipeline.indexer import IndexedState, IndexerWorker
from tests.support.pipeline import totals
from tests.unit.pipeline.fake_pipeline import FakePipeline


def test_old_reordered_and_duplicated_messages_leave_the_newest_version(pipeline: FakePipeline) -> None:
    pid = pipeline.insert("P", description="the first text")
    pipeline.sync()
    v1 = pipeline.postgres_state()[pid][0]
    pipeline.db.update(pid, description="the second text")
    v2 = pipeline.postgres_state()[pid][0]
    pipeline.db.update(pid, description="the third text")
    newest = pipeline.postgres_state()[pid]
    pipeline.db.outbox.clear()  # the test delivers the messages itself, newest first
    late = [
        ProductChange(pid, newest[0], "upsert"),
        ProductChange(pid, v2, "upsert"),
        ProductChange(pid, v1, "upsert", source="backfill", run="old"),
        ProductChange(pid, v1, "delete", source="backfill", run="older"),  # a stale delete
        ProductChange(pid, v2, "upsert", source="repair", run="r1"),
        ProductChange(pid, newest[0], "upsert", source="backfill", run="dup"),
    ]
    for change in late:
        pipeline.queue.send_batch([change.to_message()])
        pipeline.index_all()
        assert pipeline.index_state()[pid] == newest, change
    third = product_text(pipeline.db.products[pid])
    assert pipeline.embedder.texts.count(third) == 1  # embedded once, then left alone


def test_a_message_for_a_deleted_product_never_brings_it_back(pipeline: FakePipeline) -> None:
    keep, gone = pipeline.insert("KEEP"), pipeline.insert("GONE")
    pipeline.sync()
    version = pipeline.postgres_state()[gone][0]
    pipeline.db.delete(gone)
    results = pipeline.sync()
    assert totals(results)["deleted"] == 1
    pipeline.queue.send_batch([ProductChange(gone, version, "upsert", source="repair", run="x").to_message()])
    pipeline.index_all()
    assert set(pipeline.index_state()) == {keep}


def test_invariant_3_an_older_read_never_overwrites_a_newer_vector(pipeline: FakePipeline) -> None:
    """Indexer A reads version 1; before it writes, indexer B indexes version 2; A must not win.
    (The same race on the real stack stays in tests/integration/pipeline/test_indexer.py.)"""
    pid = pipeline.insert("RACE", description="the first text")
    pipeline.sync()
    pipeline.db.update(pid, description="the second text")
    pipeline.relay()
    side = FakeQueue("side", max_receives=3, clock=pipeline.clock)
    other = pipeline.new_worker(queue=side, batch_size=8)  # indexer B, its own queue consumer

    class RacingWorker(IndexerWorker):
        raced = False

        def fetch_state(self, product_ids: Sequence[int]) -> dict[int, IndexedState]:
            if not self.raced:  # between A's read of the database and its write
                self.raced = True
                pipeline.db.update(pid, description="the third text")
                side.send_batch([ProductChange(pid, 0, "upsert", source="change", run="b").to_message()])
                other.step()
            return super().fetch_state(product_ids)

    a = pipeline.new_worker(RacingWorker, batch_size=8, max_receives=3)
    result = a.step()
    assert a.raced and result.received == 1
    assert result.current == 1 and result.embedded == 0  # saw the newer vector and stood back
    assert pipeline.index_state()[pid] == pipeline.postgres_state()[pid]  # the third text
    a.close()
    other.close()


def test_freshness_and_durations_come_from_the_clock(pipeline: FakePipeline) -> None:
    pipeline.insert("FRESH")  # captured now
    pipeline.clock.advance(3)
    pipeline.relay()
    pipeline.clock.advance(4)

    class SlowModel(FakeEmbedder):
        def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
            pipeline.clock.advance(2.5)
            return super().encode(texts, **kwargs)

    worker = pipeline.new_worker()
    worker.embedder = SlowModel()
    result = worker.step()
    assert result.embedded == 1
    assert result.embed_seconds == 2.5 and result.seconds == 2.5
    assert result.max_lag == 9.5  # captured 3 + 4 + 2.5 s before it was written
