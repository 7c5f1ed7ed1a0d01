"""The search the app's widgets describe: validated into one object, bad inputs named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from refarch.errors import FieldValidationError
from refarch.webapp.url_state import MAX_QUERY_LENGTH, MAX_RESULTS, SearchParams


def test_inputs_are_normalised() -> None:
    params = SearchParams.from_inputs(
        query="  keep my coffee hot ", categories=["Kitchen", "Kitchen", " ", "Outdoor"],
        price_min=5.0, price_max="49.90", top_k=20, pages=3,
    )
    assert params == SearchParams(
        query="keep my coffee hot", categories=("Kitchen", "Outdoor"),
        price_min=Decimal("5.0"), price_max=Decimal("49.90"), top_k=20, pages=3,
    )
    assert params.limit == 60 and params.can_show_more


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"query": "  "}, "query", "Type something"),
        ({"query": "x" * (MAX_QUERY_LENGTH + 1)}, "query", "at most"),
        ({"query": "mug", "price_min": -1}, "price_min", "at least 0"),
        ({"query": "mug", "price_max": "cheap"}, "price_max", "not a number"),
        ({"query": "mug", "price_min": 50, "price_max": 10}, "price_max", "below min price"),
        ({"query": "mug", "top_k": 7}, "top_k", "one of"),
        ({"query": "mug", "pages": 0}, "pages", "at least 1"),
    ],
)
def test_bad_inputs_name_their_field(inputs, field, words) -> None:
    with pytest.raises(FieldValidationError) as info:
        SearchParams.from_inputs(**inputs)
    assert info.value.field == field
    assert words in str(info.value)


def test_more_results_is_capped() -> None:
    params = SearchParams.from_inputs(query="mug", top_k=50, pages=1000)
    assert params.limit == MAX_RESULTS
    assert not params.can_show_more
