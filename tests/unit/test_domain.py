"""The product domain (refarch.domain): the embedded text, its hash, the vector's id and
metadata, and the rule that the package imports no driver."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from refarch import embeddings
from refarch.domain.product import Product, StoredProduct
from refarch.domain.text import (
    MAX_EMBED_CHARS,
    content_hash,
    embedded_text,
    embedding_input,
    product_text,
)
from refarch.domain.vectors import (
    filter_metadata,
    product_id_of,
    vector_id,
    vector_metadata,
    version_and_hash,
)
from refarch.errors import EmptyTextError, InputError


def stored(**changes) -> StoredProduct:
    fields = {"id": 7, "sku": "S-7", "name": "Commuter Mug", "description": "Keeps coffee hot.",
              "category": "Drinkware", "price": Decimal("9.99"), "version": 4, "search_version": 3}
    return StoredProduct(**{**fields, **changes})


def test_product_text_from_a_product_a_mapping_and_a_row_object() -> None:
    # Moved here from tests/unit/test_embeddings.py: product_text lives in refarch.domain.text.
    assert embeddings.product_text is product_text  # re-used, not copied
    product = Product(
        sku="S-1", name="Commuter Mug", description="Keeps coffee hot.", price=Decimal("9.99"),
        category="Drinkware",
    )
    expected = "Commuter Mug. Category: Drinkware. Keeps coffee hot."
    assert product_text(product) == expected
    assert product_text(stored()) == expected
    assert product_text(
        {"name": "Commuter Mug", "category": "Drinkware", "description": "Keeps coffee hot.",
         "price": 9.99, "id": 7}
    ) == expected

    @dataclass
    class Row:
        name: str
        category: str | None
        description: str

    assert product_text(Row("Commuter Mug", "Drinkware", "Keeps coffee hot.")) == expected
    assert product_text(Row("Commuter Mug.", None, "Keeps coffee hot.")) == (
        "Commuter Mug. Keeps coffee hot."
    )
    assert product_text(Row("Commuter Mug", " ", "")) == "Commuter Mug."
    assert product_text({"name": "", "description": " "}) == ""
    with pytest.raises(InputError, match="missing: description"):
        product_text({"name": "Mug"})


def test_the_embedded_text_its_hash_and_the_models_part() -> None:
    product = stored()
    text = embedded_text(product)
    assert text == product_text(product)
    assert embedded_text(product, lambda p: p.sku) == "S-7"  # another text_of, same path
    assert content_hash(text) == content_hash(product_text(stored(price=Decimal("1"))))
    assert content_hash(text) != content_hash(product_text(stored(name="Other mug")))
    with pytest.raises(EmptyTextError, match="no text to embed"):
        embedded_text(stored(name=" ", description="", category=None))
    long_text = "x" * (MAX_EMBED_CHARS + 10)
    assert embedding_input(long_text) == long_text[:MAX_EMBED_CHARS]


def test_vector_id_metadata_and_reading_them_back() -> None:
    product = stored()
    assert vector_id(product.id) == "7" and product_id_of("7") == 7
    assert product_id_of("not-a-product") is None
    metadata = vector_metadata(product, "h")
    assert metadata == {"id": 7, "sku": "S-7", "name": "Commuter Mug", "category": "Drinkware",
                        "price": 9.99, "version": 3, "content_hash": "h"}
    assert version_and_hash(metadata) == (3, "h")
    assert version_and_hash(None) == (None, None)
    assert filter_metadata(stored(category=None)) == {"price": 9.99}
