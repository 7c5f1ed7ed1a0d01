"""The one rule set for product fields (editor, CSV loader, generated loads, indexer): each bad
value names its field and says why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from refarch.domain.product import Product
from refarch.domain.validation import (
    MAX_CATEGORY_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PRICE,
    MAX_SKU_LENGTH,
    clean_product,
    validate_category,
    validate_changes,
    validate_description,
    validate_embedding_text,
    validate_last_updated,
    validate_name,
    validate_price,
    validate_product,
    validate_sku,
)
from refarch.errors import EmptyTextError, FieldValidationError, InputError


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
    from refarch.pipeline.progress import IndexingState

    progress = IndexingState(1, postgres, indexed)
    assert progress.state == state
    assert progress.is_synced is synced


def test_every_limit_itself_is_accepted() -> None:
    assert validate_sku("S" * MAX_SKU_LENGTH) == "S" * MAX_SKU_LENGTH
    assert validate_name("n" * MAX_NAME_LENGTH) == "n" * MAX_NAME_LENGTH
    assert validate_category("c" * MAX_CATEGORY_LENGTH) == "c" * MAX_CATEGORY_LENGTH
    assert validate_description("d" * MAX_DESCRIPTION_LENGTH) == "d" * MAX_DESCRIPTION_LENGTH
    for func, limit in [(validate_category, MAX_CATEGORY_LENGTH),
                        (validate_description, MAX_DESCRIPTION_LENGTH)]:
        assert "at most" in str(_field_error(func, "x" * (limit + 1)))


@pytest.mark.parametrize(
    ("func", "field"),
    [(validate_sku, "sku"), (validate_name, "name"), (validate_category, "category"),
     (validate_description, "description")],
)
def test_text_that_is_not_valid_unicode_is_refused_on_its_field(func, field) -> None:
    error = _field_error(func, "lone \udc80 surrogate")
    assert error.field == field and "not valid Unicode" in str(error)


def test_text_is_nfc_normalized_so_equal_looking_text_is_equal() -> None:
    assert validate_name("Cafe\u0301") == "Caf\u00e9"
    assert validate_sku("SKU-e\u0301") == "SKU-\u00e9"


def test_control_characters_but_tab_and_newline_are_refused_in_names_and_categories() -> None:
    assert validate_name("two\tparts") == "two\tparts"
    assert _field_error(validate_name, "bell\x07").field == "name"
    assert _field_error(validate_category, "cr\rhere").field == "category"
    assert validate_description("any\r\ntext\x07 but NUL") == "any\r\ntext\x07 but NUL"


def test_last_updated_must_be_a_datetime_and_naive_means_utc() -> None:
    assert validate_last_updated(None) is None
    assert validate_last_updated(datetime(2024, 1, 2, 3, 4)) == datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    error = _field_error(validate_last_updated, "2024-01-02")
    assert error.field == "last_updated" and "not a datetime" in str(error)


def test_a_product_is_cleaned_field_by_field_and_the_first_bad_field_is_named() -> None:
    raw = Product(sku=" SKU-1 ", name=" Mug ", description="  ", price=Decimal("0"),
                  category=" ", attributes={"color": "red"})
    clean = validate_product(raw)
    assert clean == Product(sku="SKU-1", name="Mug", description="", price=Decimal("0.00"),
                            category=None, attributes={"color": "red"})
    assert validate_product(clean) == clean  # cleaning is idempotent: a loaded product re-saves as is
    with pytest.raises(FieldValidationError) as info:
        clean_product(sku="SKU-1", name="", description="x" * (MAX_DESCRIPTION_LENGTH + 1),
                      price="-1")
    assert info.value.field == "name"


def test_changes_are_validated_by_the_same_rules() -> None:
    assert validate_changes({"name": " Mug ", "price": "$1,000.00", "category": ""}) == {
        "name": "Mug", "price": Decimal("1000.00"), "category": None,
    }
    with pytest.raises(FieldValidationError) as info:
        validate_changes({"description": "ok", "price": "1.001"})
    assert info.value.field == "price"


def test_a_text_to_embed_must_have_something_in_it() -> None:
    assert validate_embedding_text("Mug.") == "Mug."
    for blank in ("", "  \n"):
        with pytest.raises(EmptyTextError, match="no text to embed"):
            validate_embedding_text(blank)
