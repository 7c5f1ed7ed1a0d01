"""A :class:`~refarch.domain.product.Product` as a row of the ``products`` table, checked and
encoded for COPY.

:func:`product_row` applies the one rule set of :mod:`refarch.domain.validation` (the editor's
rules: lengths, control characters, price range and scale, required fields), so a product a
load stores is always one the editor can save; a product that breaks a rule raises
:class:`~refarch.errors.FieldValidationError` (an :class:`~refarch.errors.InputError`) saying
why. :func:`copy_line` writes COPY's text format, escaping what it must.
"""

from __future__ import annotations

from typing import Any

from refarch.domain.product import Product
from refarch.domain.validation import clean_fields
from refarch.errors import InputError


def product_row(product: Product) -> tuple[Any, ...]:
    """The staging-table row of ``product`` (cleaned, in :data:`refarch.db.merge.COLUMNS`
    order); raises :class:`InputError` if it breaks a rule."""
    if not isinstance(product, Product):
        raise InputError(f"expected a Product, got {type(product).__name__}")
    sku, name, description, category, price, last_updated = clean_fields(
        product.sku, product.name, product.description, product.category, product.price,
        product.last_updated,
    )
    return (sku, name, category, description, price, last_updated)


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
