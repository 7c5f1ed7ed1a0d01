"""The one rule set for product fields, applied by every way a product gets into Postgres.

Who applies it:

* the CSV loader (:mod:`refarch.catalog.csv_loader`) and generated loads
  (:func:`refarch.db.copy_rows.product_row`, which every :func:`~refarch.db.load.load_products`
  row goes through) call :func:`clean_product` / :func:`clean_fields`;
* the app's editor (:mod:`refarch.db.products` insert and update) calls :func:`clean_product`
  and :func:`validate_changes`;
* the indexer calls :func:`validate_embedding_text` on the text it embeds
  (:func:`refarch.domain.text.embedded_text`).

So **a product that loads is always editable**: the editor accepts every value a load can
store, and saving a loaded product unchanged changes nothing (the loaders clean values exactly
as the editor does, so the stored text is already what the editor would make of it).

The rules (decided once, here):

=================  ========  ===============================================================
field              required  rule
=================  ========  ===============================================================
``sku``            yes       at most 64 characters, no whitespace, no control characters
``name``           yes       at most 300 characters, no control characters but tab and newline
``description``    no        at most 20,000 characters, no NUL (any other text, newlines too)
``category``       no        at most 100 characters, no control characters but tab and
                             newline; blank means no category (``None``)
``price``          yes       0 to 9,999,999,999.99 (``numeric(12, 2)``), at most two decimal
                             places (never rounded); text such as ``$1,299.00`` is accepted
``last_updated``   no        a datetime; a naive one is taken as UTC
=================  ========  ===============================================================

Every text is Unicode NFC-normalized (visually equal SKUs compare equal) and stripped of
surrounding whitespace; text that cannot be encoded as UTF-8 (a lone surrogate) is refused.

Why the description is optional: the editor has always allowed an empty one (the app's "add a
product" form needs only SKU, name and price), the column only has to be non-NULL, and a
product without one is still found by its name and category. Loaders used to require it, so a
catalog row without a description is now loaded instead of rejected.

Each failure raises :class:`~refarch.errors.FieldValidationError` (an
:class:`~refarch.errors.InputError`) naming the field, so a form can show the message next to
the field and a loader can report it with the row. No database here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from refarch.domain.product import Product
from refarch.errors import EmptyTextError, FieldValidationError

#: Longest SKU, name and category accepted (characters).
MAX_SKU_LENGTH: Final = 64
MAX_NAME_LENGTH: Final = 300
MAX_CATEGORY_LENGTH: Final = 100
#: Longest description accepted (characters); longer text is mostly truncated by the
#: embedding model anyway, and a bounded row keeps the outbox and queue messages small.
MAX_DESCRIPTION_LENGTH: Final = 20_000

#: The largest price the ``numeric(12, 2)`` column holds; every entry point accepts up to it,
#: so every stored product stays editable.
MAX_PRICE: Final = Decimal("9999999999.99")
_CENT: Final = Decimal("0.01")
_ZERO: Final = Decimal(0)

#: How each field is named in messages.
_LABELS: Final = {
    "sku": "SKU", "name": "Name", "description": "Description", "category": "Category",
    "price": "Price",
}
# Control characters refused in names and categories (tab and newline are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# What a SKU must not contain: whitespace or a control character.
_NOT_IN_SKU = re.compile(r"[\s\x00-\x1f\x7f]")


def _text(field: str, value: Any) -> str:
    """``value`` as NFC text without surrounding whitespace (``None`` is empty)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldValidationError(field, f"{field} must be text, got {type(value).__name__}")
    text: str = value
    if not text.isascii():  # ASCII is NFC and valid UTF-8 already: the common case is cheap
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FieldValidationError(
                field,
                f"{_LABELS[field]} contains text that is not valid Unicode ({exc.reason} at "
                f"character {exc.start + 1})",
            ) from None
        text = unicodedata.normalize("NFC", text)
    return text.strip()


def _length(field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise FieldValidationError(
            field, f"{_LABELS[field]} is {len(text):,} characters; at most {limit:,}"
        )


def validate_sku(value: Any) -> str:
    """Return the SKU stripped; reject an empty, over-long, spaced or control-character SKU."""
    sku = _text("sku", value)
    if not sku:
        raise FieldValidationError("sku", "SKU must not be empty")
    _length("sku", sku, MAX_SKU_LENGTH)
    if _NOT_IN_SKU.search(sku):
        raise FieldValidationError("sku", "SKU must not contain spaces or control characters")
    return sku


def validate_name(value: Any) -> str:
    """Return the name stripped; reject an empty, over-long or control-character name."""
    name = _text("name", value)
    if not name:
        raise FieldValidationError("name", "Name must not be empty")
    _length("name", name, MAX_NAME_LENGTH)
    if _CONTROL.search(name):
        raise FieldValidationError("name", "Name must not contain control characters")
    return name


def validate_description(value: Any) -> str:
    """Return the description stripped (may be empty); reject an over-long one or a NUL."""
    description = _text("description", value)
    _length("description", description, MAX_DESCRIPTION_LENGTH)
    if "\x00" in description:
        raise FieldValidationError("description", "Description must not contain NUL characters")
    return description


def validate_category(value: Any) -> str | None:
    """Return the category stripped, or ``None`` for no category; reject an over-long one."""
    category = _text("category", value)
    if not category:
        return None
    _length("category", category, MAX_CATEGORY_LENGTH)
    if _CONTROL.search(category):
        raise FieldValidationError("category", "Category must not contain control characters")
    return category


def validate_price(value: Any) -> Decimal:
    """Return the price as a Decimal with two places; reject missing, negative or odd prices.

    Accepts numbers and text such as ``"12.5"``, ``"$1,299.00"``.
    """
    if isinstance(value, Decimal):
        price = value
    else:
        price = _parse_price(value)
    if not price.is_finite():
        raise FieldValidationError("price", f"Price {value} is not a finite number")
    if price < _ZERO:
        raise FieldValidationError("price", f"Price must not be negative (got {price})")
    if price > MAX_PRICE:
        raise FieldValidationError(
            "price", f"Price {price} exceeds the maximum; it must be at most {MAX_PRICE}"
        )
    quantized = price.quantize(_CENT)
    # A float like 19.99 arrives as 19.99; three real decimals are a typo, not a rounding.
    if quantized != price:
        raise FieldValidationError("price", f"Price {price} has more than two decimal places")
    return quantized


def _parse_price(value: Any) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise FieldValidationError("price", "Price is required")
    if isinstance(value, bool):
        raise FieldValidationError("price", "Price must be a number")
    if isinstance(value, str):
        raw = value.strip().replace(",", "")
        raw = raw[1:].strip() if raw.startswith("$") else raw
    elif isinstance(value, (int, float)):
        raw = str(value)
    else:
        raise FieldValidationError("price", f"Price must be a number, got {type(value).__name__}")
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise FieldValidationError("price", f"Price {value!r} is not a number") from None


def validate_last_updated(value: Any) -> datetime | None:
    """Return the catalog's change time with a time zone (naive is UTC), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise FieldValidationError("last_updated", f"last_updated {value!r} is not a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: The cleaned fields of a product: sku, name, description, category, price, last_updated.
CleanFields = tuple[str, str, str, str | None, Decimal, datetime | None]


def clean_fields(
    sku: Any, name: Any, description: Any, category: Any, price: Any, last_updated: Any
) -> CleanFields:
    """Every field of a product checked and cleaned by the rules above, in this order.

    Raises FieldValidationError naming the first invalid field. (A tuple, not a Product: a
    bulk load cleans tens of thousands of rows a second and only needs the values.)
    """
    return (
        validate_sku(sku),
        validate_name(name),
        validate_description(description),
        validate_category(category),
        validate_price(price),
        validate_last_updated(last_updated),
    )


def clean_product(
    *,
    sku: Any,
    name: Any,
    description: Any = "",
    category: Any = None,
    price: Any,
    last_updated: Any = None,
    attributes: Mapping[str, str] | None = None,
) -> Product:
    """A :class:`Product` from raw values, every field cleaned (see :func:`clean_fields`)."""
    sku, name, description, category, price, last_updated = clean_fields(
        sku, name, description, category, price, last_updated
    )
    return Product(sku=sku, name=name, description=description, price=price, category=category,
                   last_updated=last_updated, attributes=attributes if attributes is not None else {})


def validate_product(product: Product) -> Product:
    """``product`` with every field checked and cleaned (see :func:`clean_fields`)."""
    return clean_product(
        sku=product.sku, name=product.name, description=product.description,
        category=product.category, price=product.price, last_updated=product.last_updated,
        attributes=product.attributes,
    )


#: The rule of each field the editor can set.
_RULES: Final[Mapping[str, Callable[[Any], Any]]] = {
    "sku": validate_sku, "name": validate_name, "description": validate_description,
    "category": validate_category, "price": validate_price,
}


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The cleaned value of each given field (an edit of some fields), in the given order.

    Raises FieldValidationError naming the first invalid field; ``KeyError`` for a name that is
    not a product field.
    """
    return {field: _RULES[field](value) for field, value in changes.items()}


def validate_embedding_text(text: str) -> str:
    """Return ``text`` if there is something in it to embed; else raise EmptyTextError.

    A product that passed the rules above always has text (its name is required); a row
    written to Postgres some other way may not.
    """
    if not text or not text.strip():
        raise EmptyTextError("no text to embed (name, category, description are empty)")
    return text
