"""Retries, backoff and dead letters of the indexer, on the fakes and a fake clock.

A product that fails on its own is retried after 1, 2, 4 ... seconds and dead-lettered with its
error at ``max_receives``, while the rest of its batch is indexed; an outage (the index is down)
dead-letters nothing, not even a message on its last receive (tests/unit/pipeline/test_outages.py
has the rest).
"""

from __future__ import annotations

from refarch.queue.port import OutgoingMessage, QueueStats
from tests.support.pipeline import totals
from tests.unit.pipeline.fake_pipeline import FakePipeline


def test_a_failing_product_backs_off_1_2_4_seconds_then_is_dead_lettered_with_its_error() -> None:
    pipeline = FakePipeline(max_receives=4)
    good = [pipeline.insert(f"OK-{i}") for i in range(4)]
    poison = pipeline.insert("POISON", name=" ", description=" ", category=None)
    pipeline.relay()
    first = pipeline.worker.step()
    assert set(pipeline.index_state()) == set(good)  # its batch-mates are indexed at once
    assert (first.embedded, first.failed, first.dead_lettered) == (4, 1, 0)
    for receive, delay in ((2, 1.0), (3, 2.0), (4, 4.0)):
        pipeline.clock.advance(delay - 0.25)
        assert pipeline.worker.step().received == 0, f"back before its {delay:.0f} s backoff ended"
        pipeline.clock.advance(0.25)
        result = pipeline.worker.step()
        assert result.received == 1 and pipeline.queue.deliveries[-1].receive_count == receive
        assert result.dead_lettered == (1 if receive == 4 else 0)
    (letter,) = pipeline.queue.dead_letters()
    assert letter.group_id == f"product-{poison}" and letter.receive_count == 4
    assert "no text to embed" in (letter.error or "") and str(poison) in (letter.error or "")
    assert pipeline.queue.stats() == QueueStats(visible=0, in_flight=0, dead=1)
    assert set(pipeline.index_state()) == set(good)


def test_invariant_5_poison_goes_to_the_dlq_with_its_error_and_blocks_nothing(pipeline: FakePipeline) -> None:
    """Moved from tests/integration/pipeline/test_indexer.py (it waited out real backoffs)."""
    good = [pipeline.insert(f"OK-{i}") for i in range(4)]
    poison = pipeline.insert("POISON", name=" ", description=" ", category=None)
    pipeline.relay()
    pipeline.queue.send_batch([OutgoingMessage(body="{not json", group_id="junk", dedup_id="junk-1")])
    first = pipeline.worker.step()
    assert set(pipeline.index_state()) == set(good)  # the rest of the batch is indexed at once
    assert first.dead_lettered == 1  # the malformed message, at once
    deadline = pipeline.clock.monotonic() + 30
    while pipeline.queue.stats().dead < 2 and pipeline.clock.monotonic() < deadline:
        pipeline.worker.step()
        pipeline.clock.sleep(0.2)
    letters = {d.group_id: d for d in pipeline.queue.dead_letters()}
    assert "malformed message" in (letters["junk"].error or "")
    assert letters[f"product-{poison}"].receive_count == 3  # after max_receives, not before
    assert "no text to embed" in (letters[f"product-{poison}"].error or "")
    assert str(poison) in (letters[f"product-{poison}"].error or "")
    # Fix the row, redrive: the product is indexed.
    pipeline.db.update(poison, name="Fixed mug")
    pipeline.db.outbox.clear()  # only the redriven message may carry the fix
    assert pipeline.queue.redrive() == 2
    pipeline.index_all()
    assert pipeline.index_state() == pipeline.postgres_state()
    assert [d.group_id for d in pipeline.queue.dead_letters()] == ["junk"]


def test_a_record_the_index_rejects_fails_alone(pipeline: FakePipeline) -> None:
    """Moved from tests/integration/pipeline/test_indexer.py (its retries slept); the real index
    server's rejection stays covered there."""
    good = [pipeline.insert(f"OK-{i}") for i in range(3)]
    huge = pipeline.insert("HUGE-NAME", name="n" * 50_000)  # metadata over the 40 KB limit
    results = pipeline.sync()
    assert set(pipeline.index_state()) == set(good)
    assert totals(results)["failed"] >= 1
    deadline = pipeline.clock.monotonic() + 30
    while pipeline.queue.stats().dead < 1 and pipeline.clock.monotonic() < deadline:
        pipeline.worker.step()
        pipeline.clock.sleep(0.2)
    (letter,) = pipeline.queue.dead_letters()
    assert letter.group_id == f"product-{huge}" and "index rejected the record" in (letter.error or "")


def test_an_outage_dead_letters_nothing_even_a_message_on_its_last_receive(
    pipeline: FakePipeline,
) -> None:
    """Was: a whole-batch failure dead-lettered the messages on their last receive (issue 14:
    an outage treated like poison). Now the batch is held through the outage and finished."""
    worn, fresh = pipeline.insert("WORN"), pipeline.insert("FRESH")
    pipeline.relay()
    for _ in range(2):  # two earlier consumers took WORN and died without a word
        (taken,) = pipeline.queue.receive(1)
        assert taken.group_id == f"product-{worn}"
        pipeline.queue.change_visibility(taken.receipt_handle, 0)
    pipeline.index.down = True
    pipeline.clock.call_later(10 * pipeline.visibility_timeout,
                              lambda: setattr(pipeline.index, "down", False))
    result = pipeline.worker.step()
    assert pipeline.queue.dead_letters() == []  # WORN was on its last (3rd) receive
    assert (result.received, result.embedded, result.dead_lettered, result.outages) == (2, 2, 0, 1)
    assert sorted(m.receive_count for m in pipeline.queue.deliveries[-2:]) == [1, 3]
    assert pipeline.queue.stats() == QueueStats(visible=0, in_flight=0, dead=0)
    assert set(pipeline.index_state()) == {worn, fresh}


def test_a_malformed_message_is_dead_lettered_on_its_first_receive(pipeline: FakePipeline) -> None:
    pipeline.queue.send_batch([
        OutgoingMessage(body='{"product_id": -1, "version": 1}', group_id="junk", dedup_id="neg"),
        OutgoingMessage(body='{"product_id": 5, "version": "v2"}', group_id="other", dedup_id="ver"),
    ])
    result = pipeline.worker.step()
    assert (result.received, result.products, result.dead_lettered) == (2, 0, 2)
    errors = sorted(d.error or "" for d in pipeline.queue.dead_letters())
    assert all(e.startswith("malformed message: ") for e in errors)
    assert "product_id must be a non-negative integer" in errors[0]
    assert "version must be an integer" in errors[1]
    assert all(d.receive_count == 1 for d in pipeline.queue.dead_letters())
