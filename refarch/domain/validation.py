"""Validation of product fields, shared by the app's editor and the CSV loader.

Each function returns the cleaned value or raises :class:`~refarch.errors.FieldValidationError`
naming the field (``sku``, ``name``, ``description``, ``category``, ``price``), so a form can
show each message next to its field and a loader can report it with the row. No database here.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from refarch.errors import FieldValidationError

#: Longest SKU, name and category the editor accepts (characters).
MAX_SKU_LENGTH: Final = 64
MAX_NAME_LENGTH: Final = 300
MAX_CATEGORY_LENGTH: Final = 100
#: Longest description the editor accepts (characters); longer text is mostly truncated by the
#: embedding model anyway, and a bounded row keeps the outbox and queue messages small.
MAX_DESCRIPTION_LENGTH: Final = 20_000

#: The largest price the ``numeric(12, 2)`` column holds; the editor and the loader accept up
#: to it, so every stored product stays editable.
MAX_PRICE: Final = Decimal("9999999999.99")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldValidationError(field, f"{field} must be text, got {type(value).__name__}")
    # NFC so that visually equal SKUs compare equal; strip surrounding whitespace.
    return unicodedata.normalize("NFC", value).strip()


def validate_sku(value: Any) -> str:
    """Return the SKU stripped; reject an empty, over-long or control-character SKU."""
    sku = _text("sku", value)
    if not sku:
        raise FieldValidationError("sku", "SKU must not be empty")
    if len(sku) > MAX_SKU_LENGTH:
        raise FieldValidationError("sku", f"SKU is {len(sku)} characters; at most {MAX_SKU_LENGTH}")
    if any(ch.isspace() for ch in sku) or _CONTROL.search(sku):
        raise FieldValidationError("sku", "SKU must not contain spaces or control characters")
    return sku


def validate_name(value: Any) -> str:
    """Return the name stripped; reject an empty or over-long name."""
    name = _text("name", value)
    if not name:
        raise FieldValidationError("name", "Name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise FieldValidationError(
            "name", f"Name is {len(name)} characters; at most {MAX_NAME_LENGTH}"
        )
    if _CONTROL.search(name):
        raise FieldValidationError("name", "Name must not contain control characters")
    return name


def validate_description(value: Any) -> str:
    """Return the description stripped (may be empty); reject an over-long one."""
    description = _text("description", value)
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise FieldValidationError(
            "description",
            f"Description is {len(description):,} characters; at most {MAX_DESCRIPTION_LENGTH:,}",
        )
    if "\x00" in description:
        raise FieldValidationError("description", "Description must not contain NUL characters")
    return description


def validate_category(value: Any) -> str | None:
    """Return the category stripped, or ``None`` for no category; reject an over-long one."""
    category = _text("category", value)
    if not category:
        return None
    if len(category) > MAX_CATEGORY_LENGTH:
        raise FieldValidationError(
            "category", f"Category is {len(category)} characters; at most {MAX_CATEGORY_LENGTH}"
        )
    if _CONTROL.search(category):
        raise FieldValidationError("category", "Category must not contain control characters")
    return category


def validate_price(value: Any) -> Decimal:
    """Return the price as a Decimal with two places; reject missing, negative or odd prices.

    Accepts numbers and text such as ``"12.5"``, ``"$1,299.00"``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldValidationError("price", "Price is required")
    if isinstance(value, bool):
        raise FieldValidationError("price", "Price must be a number")
    if isinstance(value, str):
        raw = value.strip().replace(",", "")
        raw = raw[1:].strip() if raw.startswith("$") else raw
    elif isinstance(value, (int, float, Decimal)):
        raw = str(value)
    else:
        raise FieldValidationError("price", f"Price must be a number, got {type(value).__name__}")
    try:
        price = Decimal(raw)
    except InvalidOperation:
        raise FieldValidationError("price", f"Price {value!r} is not a number") from None
    if not price.is_finite():
        raise FieldValidationError("price", "Price must be a finite number")
    if price < 0:
        raise FieldValidationError("price", f"Price must not be negative (got {price})")
    if price > MAX_PRICE:
        raise FieldValidationError("price", f"Price must be at most {MAX_PRICE}")
    quantized = price.quantize(Decimal("0.01"))
    # A float like 19.99 arrives as 19.99; three real decimals are a typo, not a rounding.
    if quantized != price:
        raise FieldValidationError("price", f"Price {price} has more than two decimal places")
    return quantized
