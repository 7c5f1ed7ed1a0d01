"""The product-change message and the relay's coalescing (pure functions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from refarch.pipeline.changes import MalformedMessageError, ProductChange
from refarch.pipeline.outbox import OutboxRow, coalesce
from refarch.queue.port import OutgoingMessage
from tests.unit.pipeline.fake_pipeline import FakePipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_message_round_trips_with_group_and_dedup_ids() -> None:
    change = ProductChange(42, 7, "delete", T0, "repair", "run1")
    message = change.to_message()
    assert message.group_id == "product-42"
    assert message.dedup_id == "repair-42-7-run1"
    assert ProductChange.from_json(message.body) == change


def test_the_same_change_published_twice_has_the_same_dedup_id() -> None:
    assert ProductChange(1, 5, "upsert", T0).dedup_id == ProductChange(1, 5, "upsert").dedup_id
    assert ProductChange(1, 5, "upsert").dedup_id != ProductChange(1, 6, "upsert").dedup_id


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"version": 1}', "product_id must be a non-negative integer"),
        ('{"product_id": "1", "version": 1}', "product_id must be a non-negative integer"),
        ('{"product_id": 1, "version": "x"}', "version must be an integer"),
        ('{"product_id": 1, "version": 1, "op": "drop"}', "op must be one of upsert, delete"),
        ('{"product_id": 1, "version": 1, "source": "x"}', "source must be one of"),
        ('{"product_id": 1, "version": 1, "changed_at": "yesterday"}', "changed_at is not an ISO"),
    ],
)
def test_malformed_bodies_are_rejected_with_the_reason(body: str, message: str) -> None:
    with pytest.raises(MalformedMessageError, match=message):
        ProductChange.from_json(body)


def test_a_product_id_beyond_bigint_is_a_malformed_message_naming_it() -> None:
    huge = "9" * 600
    with pytest.raises(MalformedMessageError, match=r"product_id 9{40}\.\.\. \(600 digits\) "
                       r"is out of range: product ids are Postgres bigints, at most "
                       r"9223372036854775807") as caught:
        ProductChange.from_json(f'{{"product_id": {huge}, "version": 1}}')
    assert len(str(caught.value)) < 200  # the 600 digits are not echoed whole


@pytest.mark.parametrize("field", ["product_id", "version"])
def test_bigint_bounds_are_inclusive(field: str) -> None:
    largest = 2**63 - 1
    body = {"product_id": 1, "version": 1, field: largest}
    change = ProductChange.from_json(json.dumps(body))
    assert getattr(change, field) == largest
    body[field] = largest + 1
    with pytest.raises(MalformedMessageError, match=f"{field} {largest + 1} .*out of range"):
        ProductChange.from_json(json.dumps(body))


def test_a_version_below_bigint_is_malformed() -> None:
    with pytest.raises(MalformedMessageError, match="version -9223372036854775809 of product_id 3"):
        ProductChange.from_json(json.dumps({"product_id": 3, "version": -(2**63) - 1}))


def test_coalesce_keeps_one_change_per_product_latest_version_earliest_time() -> None:
    rows = [
        OutboxRow(1, 10, "upsert", 5, T0),
        OutboxRow(2, 11, "upsert", 6, T0 + timedelta(seconds=1)),
        OutboxRow(3, 10, "upsert", 7, T0 + timedelta(seconds=2)),
        OutboxRow(4, 10, "delete", 9, T0 + timedelta(seconds=3)),
    ]
    changes = coalesce(rows)
    assert [(c.product_id, c.version, c.op, c.changed_at) for c in changes] == [
        (10, 9, "delete", T0),
        (11, 6, "upsert", T0 + timedelta(seconds=1)),
    ]


def test_coalesce_of_nothing_is_nothing() -> None:
    assert coalesce([]) == []


def test_a_product_id_beyond_bigint_is_dead_lettered_alone_naming_it() -> None:
    pipeline = FakePipeline()
    # Postgres would refuse the whole batch's read of the rows (bigint out of range); the
    # message is refused when parsed instead, so its batch-mates are indexed.
    good = [pipeline.insert(f"OK-{i}") for i in range(3)]
    pipeline.relay()
    huge = "7" * 600
    pipeline.queue.send_batch([OutgoingMessage(body=f'{{"product_id": {huge}, "version": 1}}',
                                               group_id="huge", dedup_id="huge-1")])
    result = pipeline.worker.step()
    assert (result.received, result.dead_lettered) == (4, 1)
    assert set(pipeline.index_state()) == set(good)
    (letter,) = pipeline.queue.dead_letters()
    assert letter.group_id == "huge" and letter.receive_count == 1
    assert (letter.error or "").startswith("malformed message: product_id 7777")
    assert "(600 digits) is out of range" in (letter.error or "")
