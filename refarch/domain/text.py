"""The text that is embedded for a product, the part the model is given, and its content hash.

:func:`product_text` is the one place that decides what text of a product is embedded; every
stage (notebooks, the loader, the indexer, reconcile) calls it, so a product is embedded the
same way wherever it comes from. :func:`embedded_text` is what the indexer embeds and what
reconcile hashes, so the hash reconcile computes is the indexer's by construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from refarch.domain.product import StoredProduct
from refarch.domain.validation import validate_embedding_text
from refarch.errors import InputError

#: Characters of a product's text given to the model. The model reads at most 256 tokens and
#: a token is rarely more than a few characters, so this keeps every token the model would
#: see while sparing the tokenizer megabytes of text it would throw away.
MAX_EMBED_CHARS = 16_000


class ProductLike(Protocol):
    """Anything with a product's text fields: a Product, a StoredProduct, a row object."""

    @property
    def name(self) -> str: ...

    @property
    def category(self) -> str | None: ...

    @property
    def description(self) -> str: ...


#: A function from a stored product to the text embedded for it (:func:`product_text`, or a
#: replacement in tests).
TextOf = Callable[[StoredProduct], str]


def product_text(product: ProductLike | Mapping[str, Any]) -> str:
    """The text that is embedded for ``product``: its name, category and description.

    ``product`` is a :class:`~refarch.domain.product.Product` or
    :class:`~refarch.domain.product.StoredProduct` (or any object with ``name``, ``category``
    and ``description`` attributes) or a mapping with the keys ``name``, ``description`` and
    optionally ``category`` (a database row, a queue message).
    Parts that are missing or blank are left out, e.g.::

        Kestrel Commuter Travel Mug, 16 oz. Category: Drinkware. A travel mug made from ...

    Change it and the whole index must be re-embedded (reconcile then finds every vector
    stale, which is right: they were embedded from other text).
    """
    if isinstance(product, Mapping):
        missing = [key for key in ("name", "description") if key not in product]
        if missing:
            raise InputError(
                f"a product mapping needs the keys name and description; missing: "
                f"{', '.join(missing)}"
            )
        name, category, description = (
            product["name"], product.get("category"), product["description"],
        )
    else:
        name, category, description = product.name, product.category, product.description
    parts = []
    if name and str(name).strip():
        parts.append(str(name).strip().rstrip("."))
    if category and str(category).strip():
        parts.append(f"Category: {str(category).strip()}")
    text = ". ".join(parts)
    if description and str(description).strip():
        text = f"{text}. {str(description).strip()}" if text else str(description).strip()
    elif text:
        text += "."
    return text


def embedded_text(product: StoredProduct, text_of: TextOf = product_text) -> str:
    """The text the index embeds for ``product`` (``text_of``'s); raises EmptyTextError if blank."""
    return validate_embedding_text(text_of(product))


def content_hash(text: str) -> str:
    """The hash stored with each vector: SHA-256 of the exact text that was embedded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedding_input(text: str) -> str:
    """The part of ``text`` the model is given (its content hash covers all of it)."""
    return text[:MAX_EMBED_CHARS]
