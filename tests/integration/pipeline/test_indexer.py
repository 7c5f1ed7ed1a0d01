"""The indexer against real Postgres, the real local queue, the real index server and model.

One test per invariant it carries (2, 3, 4, 5), each arranged so that it fails if the mechanism
is taken out. What is only timing logic (retry backoff, the hold's heartbeat and stall check)
runs on the fakes and a fake clock in tests/unit/pipeline/; nothing here sleeps.
"""

from __future__ import annotations

import pytest

from refarch.embeddings import product_text
from refarch.pipeline.changes import ProductChange
from refarch.pipeline.indexer import IndexerWorker, content_hash
from refarch.queue.port import OutgoingMessage
from tests.support.pipeline import totals

from .harness import Pipeline


def test_inserts_reach_the_index_with_metadata(pipeline: Pipeline) -> None:
    ids = [pipeline.insert(f"M-{i}", name=f"Travel mug {i}", price=10 + i) for i in range(5)]
    results = pipeline.sync()
    assert totals(results)["embedded"] == 5
    assert pipeline.index_state() == pipeline.postgres_state()
    fetched = pipeline.index.fetch([str(ids[2])])
    _, metadata = fetched[str(ids[2])]
    row = pipeline.sql(
        "SELECT sku, name, category, price, search_version FROM products WHERE id = %s", (ids[2],)
    )[0]
    assert metadata["id"] == ids[2]
    assert (metadata["sku"], metadata["name"], metadata["category"]) == row[:3]
    assert metadata["price"] == float(row[3]) and metadata["version"] == row[4]
    assert metadata["content_hash"] == content_hash(
        product_text({"name": row[1], "category": row[2], "description": "a thing"})
    )


def test_invariant_2_deletes_reach_the_index(pipeline: Pipeline) -> None:
    keep, gone = pipeline.insert("KEEP"), pipeline.insert("GONE")
    pipeline.sync()
    pipeline.sql("DELETE FROM products WHERE id = %s", (gone,))
    results = pipeline.sync()
    assert totals(results)["deleted"] == 1
    assert set(pipeline.index_state()) == {keep}


def test_invariant_3_an_older_read_never_overwrites_a_newer_vector(
    pipeline: Pipeline, pipeline_parts
) -> None:
    """Indexer A reads version 1; before it writes, indexer B indexes version 2; A must not win."""
    pid = pipeline.insert("RACE", description="the first text")
    pipeline.sync()
    pipeline.sql("UPDATE products SET description = 'the second text' WHERE id = %s", (pid,))
    pipeline.relay()

    other = pipeline_parts.second_worker()  # indexer B, its own queue consumer

    class RacingIndex:
        """The index, with indexer B's newer write slipped in on A's first fetch: between A's
        read of Postgres and its write."""

        raced = False

        def fetch(self, ids):
            if not self.raced:
                self.raced = True
                pipeline.sql("UPDATE products SET description = 'the third text' WHERE id = %s", (pid,))
                other.handle_now(ProductChange(pid, 0, "upsert", source="change", run="b"))
            return pipeline.index.fetch(ids)

        def __getattr__(self, name):
            return getattr(pipeline.index, name)

    racing = RacingIndex()
    a = pipeline.new_worker(max_receives=3, batch_size=8, visibility_timeout=30, index=racing)
    result = a.step()
    assert racing.raced and result.received == 1
    assert result.current == 1 and result.embedded == 0  # saw the newer vector and stood back
    expected = pipeline.postgres_state()[pid]
    assert pipeline.index_state()[pid] == expected  # the third text, version 3
    a.close()


def test_invariant_4_duplicates_are_harmless_and_unchanged_text_is_not_re_embedded(
    pipeline: Pipeline,
) -> None:
    pid = pipeline.insert("DUP", description="keeps coffee hot")
    pipeline.sync()
    assert pipeline.embedder.texts == [product_text({"name": "Product DUP", "category": "Kitchen",
                                                     "description": "keeps coffee hot"})]
    vector_before = pipeline.index.fetch([str(pid)])[str(pid)][0]
    version = pipeline.postgres_state()[pid][0]
    # The same change delivered three more times (different dedup ids, so the queue keeps them).
    dupes = [ProductChange(pid, version, "upsert", source="repair" if i == 0 else "backfill", run=str(i))
             for i in range(3)]
    pipeline.owner_queue.send_batch([d.to_message() for d in dupes])
    results = pipeline.index_all()
    assert totals(results)["embedded"] == 0
    # A change to price only: new metadata, the same vector, no embedding.
    pipeline.sql("UPDATE products SET price = 99 WHERE id = %s", (pid,))
    results = pipeline.sync()
    assert totals(results)["reused"] == 1 and totals(results)["embedded"] == 0
    assert len(pipeline.embedder.texts) == 1
    values, metadata = pipeline.index.fetch([str(pid)])[str(pid)]
    assert metadata["price"] == 99.0 and metadata["version"] > version
    assert list(values) == pytest.approx(list(vector_before))


def _impatient(pipeline: Pipeline) -> IndexerWorker:
    """An indexer that dead-letters a failing product on its first receive (max_receives=1),
    so the real DLQ path is reached without waiting out backoffs (the retries themselves are
    unit-tested on a fake clock: tests/unit/pipeline/test_retries.py)."""
    return pipeline.new_worker(max_receives=1, batch_size=32, visibility_timeout=30)


def test_invariant_5_poison_reaches_the_real_dlq_with_its_error_and_blocks_nothing(
    pipeline: Pipeline,
) -> None:
    good = [pipeline.insert(f"OK-{i}") for i in range(4)]
    poison = pipeline.insert("POISON", name=" ", description=" ", category=None)
    pipeline.relay()
    pipeline.owner_queue.send_batch([OutgoingMessage(body="{not json", group_id="junk", dedup_id="junk-1")])
    worker = _impatient(pipeline)
    first = worker.step()
    worker.close()
    assert set(pipeline.index_state()) == set(good)  # the rest of the batch is indexed at once
    assert first.dead_lettered == 2  # the malformed message and, on its last receive, the poison
    letters = {d.group_id: d for d in pipeline.owner_queue.dead_letters()}
    assert "malformed message" in (letters["junk"].error or "")
    assert letters[f"product-{poison}"].receive_count == 1
    assert "no text to embed" in (letters[f"product-{poison}"].error or "")
    assert str(poison) in (letters[f"product-{poison}"].error or "")
    # Fix the row, redrive: the product is indexed.
    pipeline.sql("UPDATE products SET name = 'Fixed mug' WHERE id = %s", (poison,))
    pipeline.sql("DELETE FROM outbox")  # only the redriven message may carry the fix
    assert pipeline.owner_queue.redrive() == 2
    pipeline.index_all()
    assert pipeline.index_state() == pipeline.postgres_state()
    assert [d.group_id for d in pipeline.owner_queue.dead_letters()] == ["junk"]


def test_a_record_the_real_index_rejects_fails_alone(pipeline: Pipeline) -> None:
    good = [pipeline.insert(f"OK-{i}") for i in range(3)]
    huge = pipeline.insert("HUGE-NAME", name="n" * 50_000)  # metadata over the 40 KB limit
    pipeline.relay()
    worker = _impatient(pipeline)
    result = worker.step()
    worker.close()
    assert set(pipeline.index_state()) == set(good)  # the server's 400 failed that record alone
    assert result.failed >= 1
    (letter,) = pipeline.owner_queue.dead_letters()
    assert letter.group_id == f"product-{huge}" and "index rejected the record" in (letter.error or "")
