"""A :class:`~refarch.domain.product.Product` as a row of the ``products`` table, checked and
encoded for COPY.

:func:`product_row` refuses what PostgreSQL would refuse or silently mangle (empty required
text, NUL characters, prices outside ``numeric(12, 2)``) with an :class:`InputError` saying
why; :func:`copy_line` writes COPY's text format, escaping what it must.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from refarch.domain.product import Product
from refarch.domain.validation import MAX_PRICE
from refarch.errors import InputError

# Prices from here on round (half away from zero, as PostgreSQL does) beyond MAX_PRICE.
_PRICE_LIMIT = Decimal("9999999999.995")


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not value or value.isspace()


def _has_nul(*values: str | None) -> bool:
    return any(v is not None and "\x00" in v for v in values)


def product_row(product: Product) -> tuple[Any, ...]:
    """The staging-table row of ``product``; raises :class:`InputError` if it cannot be stored."""
    if not isinstance(product, Product):
        raise InputError(f"expected a Product, got {type(product).__name__}")
    if _blank(product.sku):
        raise InputError("sku is empty")
    if _blank(product.name):
        raise InputError("name is empty")
    if _blank(product.description):
        raise InputError("description is empty")
    category = product.category if product.category else None
    if category is not None and not isinstance(category, str):
        raise InputError(f"category {category!r} is not text")
    if _has_nul(product.sku, product.name, product.description, category):
        raise InputError("contains a NUL character, which PostgreSQL text cannot hold")
    price = product.price
    if not isinstance(price, Decimal):
        try:
            price = Decimal(str(price))
        except ArithmeticError:
            raise InputError(f"price {product.price!r} is not a number") from None
    if not price.is_finite():
        raise InputError(f"price {price} is not a finite number")
    if price < 0:
        raise InputError(f"price {price} is negative")
    if price >= _PRICE_LIMIT:
        raise InputError(f"price {price} exceeds the maximum of {MAX_PRICE}")
    last_updated = product.last_updated
    if last_updated is not None:
        if not isinstance(last_updated, datetime):
            raise InputError(f"last_updated {last_updated!r} is not a datetime")
        if last_updated.tzinfo is None:
            last_updated = last_updated.replace(tzinfo=UTC)
    return (product.sku, product.name, category, product.description, price, last_updated)


def _escape(text: str) -> str:
    """COPY text format: backslash, tab, newline and carriage return escaped (\\N is NULL).

    Chained ``replace`` calls: each is a fast scan that returns ``text`` itself when there is
    nothing to replace, several times faster than ``str.translate`` on typical text.
    """
    return (
        text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def copy_line(row: tuple[Any, ...]) -> bytes:
    """One line of COPY text format for a :func:`product_row` row, UTF-8 encoded.

    Raises :class:`InputError` for text that is not valid Unicode (e.g. lone surrogates).
    """
    sku, name, category, description, price, last_updated = row
    fields = (
        _escape(sku),
        _escape(name),
        "\\N" if category is None else _escape(category),
        _escape(description),
        str(price),
        "\\N" if last_updated is None else last_updated.isoformat(),
    )
    try:
        return ("\t".join(fields) + "\n").encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"contains text that is not valid Unicode ({exc.reason})") from None
