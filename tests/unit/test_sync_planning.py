"""Pure decision functions of the pipeline: the indexer's plan, reconcile's comparison, filters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from refarch.domain.product import StoredProduct
from refarch.domain.text import content_hash
from refarch.domain.vectors import vector_metadata
from refarch.errors import InputError
from refarch.pipeline.indexer import IndexedState, plan_batch
from refarch.pipeline.reconcile import compare
from refarch.search import build_filter, validate_filter


def text_of(row: StoredProduct) -> str:
    return f"{row.name}. {row.category or ''}. {row.description}".strip()


def row(pid: int, version: int, name: str = "Mug", description: str = "keeps coffee hot",
        price: str = "10.00", category: str | None = "Kitchen") -> StoredProduct:
    return StoredProduct(id=pid, sku=f"SKU-{pid}", name=name, description=description,
                         category=category, price=Decimal(price), version=version,
                         search_version=version)


def state_of(r: StoredProduct, version: int | None = None, values=(0.1, 0.2)) -> IndexedState:
    return IndexedState(r.search_version if version is None else version,
                        content_hash(text_of(r)), values)


def test_new_product_is_embedded() -> None:
    r = row(1, 5)
    plan = plan_batch([1], {1: r}, {}, text_of)
    assert [(x[0].id, x[2]) for x in plan.embed] == [(1, content_hash(text_of(r)))]


def test_same_version_and_text_is_left_alone_duplicates_are_harmless() -> None:
    r = row(1, 5)
    plan = plan_batch([1, 1], {1: r}, {1: state_of(r)}, text_of)
    assert plan.current == [1] and not plan.embed and not plan.reuse


def test_price_only_change_reuses_the_stored_vector() -> None:
    old = row(1, 5)
    new = row(1, 9, price="12.00")
    plan = plan_batch([1], {1: new}, {1: state_of(old)}, text_of)
    assert not plan.embed
    assert [r.product_id for r in plan.reuse] == [1]
    assert plan.reuse[0].values == (0.1, 0.2)
    assert plan.reuse[0].metadata["version"] == 9 and plan.reuse[0].metadata["price"] == 12.0


def test_text_change_is_re_embedded() -> None:
    old = row(1, 5)
    new = row(1, 9, description="now also keeps tea hot")
    plan = plan_batch([1], {1: new}, {1: state_of(old)}, text_of)
    assert [x[0].id for x in plan.embed] == [1]


def test_an_older_row_never_overwrites_a_newer_vector() -> None:
    newer = row(1, 9, description="newer text")
    older = row(1, 5, description="older text")
    plan = plan_batch([1], {1: older}, {1: state_of(newer)}, text_of)
    assert plan.current == [1] and not plan.embed and not plan.reuse


def test_a_repair_may_move_a_vector_that_is_ahead_of_postgres_back() -> None:
    newer = row(1, 9, description="newer text")
    restored = row(1, 5, description="older text")
    plan = plan_batch([1], {1: restored}, {1: state_of(newer)}, text_of, force=[1])
    assert [x[0].id for x in plan.embed] == [1]


def test_gone_rows_are_deleted_only_if_the_index_has_them() -> None:
    r = row(1, 5)
    plan = plan_batch([1, 2], {}, {1: state_of(r)}, text_of)
    assert plan.delete == [1] and plan.current == [2]


def test_a_row_without_text_fails_alone() -> None:
    empty = row(1, 5, name=" ", description=" ", category=None)
    fine = row(2, 6)
    plan = plan_batch([1, 2], {1: empty, 2: fine}, {}, lambda p: (p.name + p.description).strip(), )
    assert set(plan.failures) == {1} and "no text to embed" in plan.failures[1]
    assert [x[0].id for x in plan.embed] == [2]


def test_metadata_has_the_documented_fields() -> None:
    r = row(7, 3)
    assert vector_metadata(r, "h") == {
        "id": 7, "sku": "SKU-7", "name": "Mug", "category": "Kitchen", "price": 10.0,
        "version": 3, "content_hash": "h",
    }
    assert "category" not in vector_metadata(row(7, 3, category=None), "h")


def test_compare_finds_missing_stale_and_orphaned() -> None:
    postgres = {1: (5, "a"), 2: (6, "b"), 3: (7, "c"), 4: (8, "d")}
    index = {1: (5, "a"), 2: (4, "b"), 3: (7, "x"), 9: (1, "z")}
    report = compare(postgres, index)
    assert (report.missing, report.stale, report.orphaned) == ([4], [2, 3], [9])
    assert report.drift == 4
    assert compare(postgres, dict(postgres)).drift == 0


def test_build_filter() -> None:
    assert build_filter() is None
    assert build_filter(["Kitchen"]) == {"category": {"$eq": "Kitchen"}}
    assert build_filter(["A", "B"], 5, Decimal("20")) == {
        "category": {"$in": ["A", "B"]}, "price": {"$gte": 5.0, "$lte": 20.0}
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"colour": "red"}, "unknown filter field 'colour'"),
        ({"$and": [{"category": "A"}, {"brand": "x"}]}, "unknown filter field 'brand'"),
        ({"price": {"$gt": "cheap"}}, "must be a number"),
        ({"price": {"$regex": "1"}}, r"\$regex"),
        ("category = 'x'", "must be a JSON object"),
    ],
)
def test_bad_filters_are_rejected_with_the_reason(raw, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_filter(raw)


def test_good_filters_parse() -> None:
    assert validate_filter(None) is None
    assert validate_filter({"category": "A", "price": {"$lte": 10}}) is not None
