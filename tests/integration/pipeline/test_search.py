"""refarch.search: the index finds, Postgres answers (real model, index, Postgres)."""

from __future__ import annotations

import psycopg
import pytest

from refarch.db.products import get_product
from refarch.domain.product import StoredProduct
from refarch.errors import EmptyTextError, InputError
from refarch.search import build_filter, search

from .harness import Pipeline

CATALOG = [
    ("MUG-1", "Insulated travel mug", "Drinkware", 24.0, "Keeps coffee hot for hours on the commute."),
    ("MUG-2", "Ceramic coffee mug", "Drinkware", 9.0, "A classic mug for coffee at the office."),
    ("BAG-1", "Insulated lunch bag", "Kitchen", 19.0, "Keeps sandwiches cool until lunch time."),
    ("HOSE-1", "Garden hose 25 m", "Garden", 39.0, "A flexible hose for watering the garden."),
    ("JACKET-1", "Waterproof rain jacket", "Outerwear", 120.0, "Stays dry in heavy rain."),
]


@pytest.fixture
def catalog(pipeline: Pipeline) -> dict[str, int]:
    ids = {sku: pipeline.insert(sku, name=name, category=cat, price=price, description=desc)
           for sku, name, cat, price, desc in CATALOG}
    pipeline.sync()
    return ids


def _search(pipeline: Pipeline, query: str, **kwargs):
    with psycopg.connect(pipeline.owner_url, autocommit=True) as conn:
        return search(query, embedder=pipeline.embedder, index=pipeline.index, conn=conn, **kwargs)


def test_results_come_in_score_order_with_rows_from_postgres(pipeline: Pipeline, catalog) -> None:
    result = _search(pipeline, "keep my coffee hot on the commute", top_k=3)
    assert [hit.sku for hit in result.hits][0] == "MUG-1"
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3
    assert set(result.timings) == {"embed", "index", "postgres"}
    # The row is read from Postgres: an edit to a non-text column shows at once.
    pipeline.sql("UPDATE products SET last_updated = now(), price = 25 WHERE sku = 'MUG-1'")
    hit = _search(pipeline, "keep my coffee hot on the commute", top_k=1).hits[0]
    assert hit.sku == "MUG-1" and float(hit.price) == 25.0
    assert hit.search_version > (hit.indexed_version or 0)  # the edit is not indexed yet


def test_a_hit_is_the_stored_product_and_its_json_shape_is_stable(pipeline: Pipeline, catalog) -> None:
    hit = _search(pipeline, "keep my coffee hot on the commute", top_k=1).hits[0]
    with psycopg.connect(pipeline.owner_url) as conn:
        stored = get_product(conn, catalog["MUG-1"])
    assert isinstance(hit, StoredProduct) and hit.id == stored.id
    assert (hit.sku, hit.name, hit.category, hit.description, hit.price, hit.version,
            hit.search_version, hit.updated_at) == (
        stored.sku, stored.name, stored.category, stored.description, stored.price, stored.version,
        stored.search_version, stored.updated_at)
    # `refarch search --json` prints as_dict(): these keys, in this order, these types.
    as_json = hit.as_dict()
    assert list(as_json) == ["id", "score", "sku", "name", "category", "price", "description",
                             "version", "search_version", "indexed_version"]
    assert as_json["price"] == 24.0 and isinstance(as_json["price"], float)
    assert as_json["indexed_version"] == stored.search_version and as_json["score"] == hit.score


def test_filters_on_category_and_price(pipeline: Pipeline, catalog) -> None:
    result = _search(pipeline, "keep things hot or cold", top_k=5, filter=build_filter(["Kitchen"]))
    assert [hit.sku for hit in result.hits] == ["BAG-1"]
    result = _search(pipeline, "coffee", top_k=5, filter={"price": {"$lte": 20}})
    assert {hit.sku for hit in result.hits} == {"MUG-2", "BAG-1"}
    result = _search(pipeline, "coffee", top_k=5,
                     filter={"$or": [{"category": "Garden"}, {"price": {"$gt": 100}}]})
    assert {hit.sku for hit in result.hits} == {"HOSE-1", "JACKET-1"}


def test_ids_postgres_no_longer_has_are_dropped(pipeline: Pipeline, catalog) -> None:
    pipeline.sql("DELETE FROM products WHERE sku = 'MUG-1'")  # not yet synced to the index
    result = _search(pipeline, "keep my coffee hot on the commute", top_k=5)
    assert "MUG-1" not in [hit.sku for hit in result.hits]
    assert result.dropped_missing == 1 and len(result.hits) == 4


def test_rows_whose_current_values_fail_the_filter_are_dropped(pipeline: Pipeline, catalog) -> None:
    pipeline.sql("UPDATE products SET category = 'Garden' WHERE sku = 'MUG-2'")  # not synced yet
    result = _search(pipeline, "coffee", top_k=5, filter={"category": "Drinkware"})
    assert [hit.sku for hit in result.hits] == ["MUG-1"]
    assert result.dropped_filtered == 1


def test_empty_index_and_no_match_give_an_empty_result(pipeline: Pipeline) -> None:
    assert _search(pipeline, "anything at all").hits == []
    pipeline.insert("ONE", name="Garden hose")
    pipeline.sync()
    assert _search(pipeline, "hose", filter={"category": "No such category"}).hits == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"filter": {"colour": "red"}}, InputError, "unknown filter field 'colour'"),
        ({"filter": {"price": {"$gt": "cheap"}}}, InputError, "must be a number"),
        ({"top_k": 0}, InputError, "top_k must be a whole number"),
    ],
)
def test_bad_input_gets_a_clear_error(pipeline: Pipeline, catalog, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        _search(pipeline, "mug", **kwargs)
    assert pipeline.sql("SELECT count(*) FROM products")[0][0] == len(CATALOG)  # nothing lost


def test_an_empty_query_is_refused(pipeline: Pipeline) -> None:
    with pytest.raises(EmptyTextError, match="empty"):
        _search(pipeline, "   ")


def test_sql_looking_text_is_just_text(pipeline: Pipeline, catalog) -> None:
    evil = "Robert'); DROP TABLE products;--"
    pid = pipeline.insert("EVIL-1", name=evil, description="a mug named after a famous student")
    pipeline.sync()
    result = _search(pipeline, evil, top_k=3, filter={"category": "Kitchen'; DELETE FROM products;--"})
    assert result.hits == []
    result = _search(pipeline, evil, top_k=1)
    assert result.hits[0].id == pid and result.hits[0].name == evil
    assert pipeline.sql("SELECT count(*) FROM products")[0][0] == len(CATALOG) + 1
