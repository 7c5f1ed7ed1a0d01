"""Field validation of the product editor: each bad value names its field and says why."""

from __future__ import annotations

from decimal import Decimal

import pytest

from refarch.domain.validation import (
    MAX_NAME_LENGTH,
    MAX_PRICE,
    validate_category,
    validate_description,
    validate_name,
    validate_price,
    validate_sku,
)
from refarch.errors import FieldValidationError, InputError


def _field_error(func, value) -> FieldValidationError:
    with pytest.raises(FieldValidationError) as info:
        func(value)
    assert isinstance(info.value, InputError)
    return info.value


@pytest.mark.parametrize("value", ["", "   ", None, "\t\n"])
def test_empty_name_is_rejected_on_the_name_field(value) -> None:
    error = _field_error(validate_name, value)
    assert error.field == "name"
    assert "empty" in str(error)


def test_name_is_stripped_and_length_checked() -> None:
    assert validate_name("  Travel mug ") == "Travel mug"
    error = _field_error(validate_name, "x" * (MAX_NAME_LENGTH + 1))
    assert error.field == "name" and str(MAX_NAME_LENGTH) in str(error)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12.5", Decimal("12.50")), ("$1,299.00", Decimal("1299.00")), (0, Decimal("0.00")),
     (19.99, Decimal("19.99")), (Decimal("7"), Decimal("7.00"))],
)
def test_prices_are_parsed_to_two_places(value, expected) -> None:
    assert validate_price(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [("-1", "negative"), (-0.01, "negative"), ("abc", "not a number"), ("", "required"),
     (None, "required"), ("NaN", "finite"), ("inf", "finite"), ("1.999", "two decimal"),
     ("1e12", "at most"), (True, "number")],
)
def test_bad_prices_are_rejected_on_the_price_field(value, reason) -> None:
    error = _field_error(validate_price, value)
    assert error.field == "price"
    assert reason in str(error)


def test_the_editor_accepts_every_price_the_loader_and_table_accept() -> None:
    # numeric(12, 2): a product loaded at the table's largest price stays editable.
    assert validate_price("9999999999.99") == MAX_PRICE
    assert "at most" in str(_field_error(validate_price, "10000000000"))


@pytest.mark.parametrize("value", ["", "  ", "has space", "tab\there", "x" * 65])
def test_bad_skus_are_rejected_on_the_sku_field(value) -> None:
    assert _field_error(validate_sku, value).field == "sku"


def test_category_blank_means_none_and_description_may_be_empty() -> None:
    assert validate_category("  ") is None
    assert validate_category(" Kitchen ") == "Kitchen"
    assert validate_description(None) == ""
    assert _field_error(validate_description, "a\x00b").field == "description"


@pytest.mark.parametrize(
    ("postgres", "indexed", "state", "synced"),
    [(5, 5, "searchable", True), (7, 5, "indexing", False), (7, None, "indexing", False),
     (None, 5, "removing", False), (None, None, "deleted", True), (5, 6, "searchable", True)],
)
def test_indexing_state_compares_the_two_versions(postgres, indexed, state, synced) -> None:
    from refarch.db.products import IndexingState

    progress = IndexingState(1, postgres, indexed)
    assert progress.state == state
    assert progress.is_synced is synced
