"""Pinecone metadata filters: parsing errors, semantics, and the column-wise evaluator agreeing
with the record-wise one on random data."""

from __future__ import annotations

import random

import numpy as np
import pytest

from refarch.errors import FilterError
from refarch.index.filters import (
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    AllOf,
    AnyOf,
    Condition,
    fields_of,
    matches,
    parse_filter,
)
from refarch.index.server.columns import MetadataColumns


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("genre", "filter must be an object"),
        ({"genre": {"$regex": "a.*"}}, "unknown operator '$regex'"),
        ({"price": {"$gt": "cheap"}}, 'filter["price"]["$gt"] must be a number'),
        ({"price": {"$lte": True}}, 'filter["price"]["$lte"] must be a number'),
        ({"genre": {"$in": "drama"}}, "must be a list of strings or numbers"),
        ({"genre": {"$in": [True]}}, 'filter["genre"]["$in"][0] must be a string or number'),
        ({"genre": {"$nin": [["a"]]}}, "must be a string or number"),
        ({"genre": {"$eq": ["a", "b"]}}, "must be a string, number or boolean"),
        ({"genre": {"$exists": 1}}, "must be true or false"),
        ({"genre": ["a", "b"]}, 'use {"$in": [...]}'),
        ({"genre": None}, "is null"),
        ({"genre": {}}, "is an empty object"),
        ({"genre": {"sub": 1}}, "nested metadata objects are not supported"),
        ({"$and": []}, "must be a non-empty list of filters"),
        ({"$or": {"a": 1}}, "must be a non-empty list of filters"),
        ({"$and": [{"a": 1}, "b"]}, 'filter["$and"][1] must be an object'),
        ({"$gt": 5}, "cannot be used at this level"),
        ({"$not": {"a": 1}}, "cannot be used at this level"),
        ({"a": {"$in": list(range(10_001))}}, "the most $in accepts is 10,000"),
        ({"a": {"$gt": float("inf")}}, "must be a finite number"),
    ],
)
def test_malformed_filters_are_rejected_with_a_pointer_to_the_problem(raw, message) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(raw)
    assert message in str(caught.value)


def _nested(levels: int, operator: str = "$and") -> dict:
    """A filter ``levels`` levels deep: ``levels - 1`` nested ``operator`` lists around a field."""
    node: dict = {"price": {"$gte": 1}}
    for _ in range(levels - 1):
        node = {operator: [node]}
    return node


def test_nesting_is_limited_to_16_levels_without_exhausting_the_stack() -> None:
    assert MAX_FILTER_DEPTH == 16
    at_limit = _nested(MAX_FILTER_DEPTH, "$or")
    assert parse_filter(at_limit) == Condition("price", "$gte", 1.0)
    assert matches(parse_filter(at_limit), {"price": 2})
    for levels in (MAX_FILTER_DEPTH + 1, 500, 5_000):  # 5,000 levels once gave a RecursionError
        with pytest.raises(FilterError) as caught:
            parse_filter(_nested(levels))
        assert "more than 16 levels deep" in str(caught.value)


def test_conditions_are_limited_to_1000() -> None:
    assert MAX_FILTER_CONDITIONS == 1_000
    many = {"$or": [{"id": {"$eq": f"v{i}"}} for i in range(MAX_FILTER_CONDITIONS)]}
    assert len(parse_filter(many).children) == 1_000  # type: ignore[union-attr]
    over = {"$or": [{"id": f"v{i}"} for i in range(MAX_FILTER_CONDITIONS + 1)]}
    with pytest.raises(FilterError) as caught:
        parse_filter(over)
    assert "more than 1,000 conditions" in str(caught.value)
    # Several operators on one field are several conditions; fields at one level count too.
    wide = {f"f{i}": {"$gt": 0, "$lt": 9} for i in range(501)}
    with pytest.raises(FilterError):
        parse_filter(wide)
    # An $in list counts once, however long.
    assert parse_filter({"a": {"$in": list(range(10_000))}}) is not None


def test_error_messages_stay_short_for_huge_or_deep_values() -> None:
    deep: list = []
    for _ in range(3_000):
        deep = [deep]
    with pytest.raises(FilterError) as caught:
        parse_filter({"genre": {"$eq": deep}})
    assert len(str(caught.value)) < 200
    with pytest.raises(FilterError) as caught:
        parse_filter({"k" * 100_000: {"$regex": "x"}})
    assert len(str(caught.value)) < 300
    for raw in ({"a": {"$" + "x" * 100_000: 1}}, {"$" + "y" * 100_000: 1}):
        with pytest.raises(FilterError) as caught:
            parse_filter(raw)
        assert len(str(caught.value)) < 400


def test_shapes_parse_into_trees() -> None:
    assert parse_filter(None) is None
    assert parse_filter({}) is None
    assert parse_filter({"genre": "drama"}) == Condition("genre", "$eq", "drama")
    assert parse_filter({"year": 2020}) == Condition("year", "$eq", 2020.0)
    assert parse_filter({"year": {"$gte": 2000, "$lt": 2010}}) == AllOf(
        (Condition("year", "$gte", 2000.0), Condition("year", "$lt", 2010.0))
    )
    tree = parse_filter({"$or": [{"a": 1}, {"b": {"$in": ["x", 2]}}], "c": True})
    assert tree == AllOf(
        (AnyOf((Condition("a", "$eq", 1.0), Condition("b", "$in", ("x", 2.0)))),
         Condition("c", "$eq", True))
    )
    assert fields_of(tree) == {"a", "b", "c"}


RECORD = {"genre": "drama", "year": 2020, "rating": 7.5, "tags": ["a", "b"], "new": True,
          "code": "10"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"genre": "drama"}, True),
        ({"genre": {"$ne": "drama"}}, False),
        ({"year": 2020.0}, True),  # numbers are 64-bit floats
        ({"year": "2020"}, False),  # typed: a string never equals a number
        ({"code": 10}, False),
        ({"code": {"$gt": 5}}, False),  # range operators never match non-numbers
        ({"new": True}, True),
        ({"new": 1}, False),  # typed: true is not 1
        ({"rating": {"$gt": 7, "$lte": 7.5}}, True),
        ({"tags": "a"}, True),  # list values match element-wise
        ({"tags": {"$in": ["z", "b"]}}, True),
        ({"tags": {"$ne": "a"}}, False),  # ... and $ne needs no element to match
        ({"tags": {"$nin": ["z"]}}, True),
        ({"tags": {"$nin": ["z", "a"]}}, False),
        ({"$and": [{"tags": "a"}, {"tags": "b"}]}, True),
        ({"missing": {"$ne": "x"}}, True),  # missing fields match the negations...
        ({"missing": {"$nin": ["x"]}}, True),
        ({"missing": {"$exists": False}}, True),
        ({"missing": {"$exists": True}}, False),
        ({"missing": "x"}, False),  # ... and no positive condition
        ({"missing": {"$lt": 1}}, False),
        ({"$or": [{"genre": "comedy"}, {"year": {"$gte": 2020}}]}, True),
        ({"$or": [{"genre": "comedy"}, {"year": {"$gt": 2020}}]}, False),
        ({"genre": {"$in": []}}, False),
        ({"genre": {"$nin": []}}, True),
    ],
)
def test_semantics(raw, expected) -> None:
    assert matches(parse_filter(raw), RECORD) is expected


def test_record_without_metadata() -> None:
    assert matches(parse_filter({"a": {"$ne": 1}}), None) is True
    assert matches(parse_filter({"a": 1}), None) is False
    assert matches(None, None) is True


# -- the column-wise evaluator agrees with the record-wise one ---------------------------------

WORDS = ["red", "green", "blue", "x", "10"]


def _random_value(rng: random.Random):
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(WORDS)
    if kind == 1:
        return float(rng.choice([0, 1, 2.5, 10, -3]))
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return rng.sample(WORDS, rng.randrange(0, 3))
    return rng.choice([1, 10])


def _random_metadata(rng: random.Random) -> dict:
    return {f: _random_value(rng) for f in ("a", "b", "c") if rng.random() < 0.7}


def _random_operand(rng: random.Random, op: str):
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return rng.choice([0, 1, 2.5, 10])
    if op in ("$in", "$nin"):
        return [rng.choice(WORDS + [0, 1, 10, 2.5]) for _ in range(rng.randrange(0, 4))]
    if op == "$exists":
        return rng.random() < 0.5
    return rng.choice(WORDS + [0, 1, 10, 2.5, True, False])


def random_filter(rng: random.Random, depth: int = 0) -> dict:
    """A random filter over fields a, b, c (and a missing field d)."""
    if depth < 2 and rng.random() < 0.3:
        key = rng.choice(["$and", "$or"])
        return {key: [random_filter(rng, depth + 1) for _ in range(rng.randrange(1, 4))]}
    field = rng.choice(["a", "b", "c", "d"])
    op = rng.choice(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"])
    if op == "$eq" and rng.random() < 0.5:
        return {field: _random_operand(rng, op)}
    return {field: {op: _random_operand(rng, op)}}


@pytest.mark.parametrize("n", [300, 4000])  # 300 stays sparse; 4000 makes dense columns
def test_columns_agree_with_record_evaluation(n: int) -> None:
    rng = random.Random(n)
    columns = MetadataColumns()
    columns.ensure(n)
    records = [_random_metadata(rng) for _ in range(n)]
    for label, metadata in enumerate(records):
        columns.set(label, metadata)
    # Overwrite and clear some labels so stale values would show.
    for label in rng.sample(range(n), n // 5):
        records[label] = _random_metadata(rng)
        columns.set(label, records[label])
    for label in rng.sample(range(n), n // 10):
        records[label] = {}
        columns.clear(label)
    assert any(col.sparse is None for col in columns.columns.values()) is (n == 4000)
    for _ in range(200):
        raw = random_filter(rng)
        tree = parse_filter(raw)
        expected = np.array([matches(tree, md) for md in records])
        got = columns.evaluate(tree, n)
        assert np.array_equal(got, expected), raw
