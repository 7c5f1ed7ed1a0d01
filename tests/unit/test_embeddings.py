"""What text of a product is embedded (refarch.embeddings.product_text): no model needed.

The model itself is tested in tests/integration/test_embeddings.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from refarch.catalog import Product
from refarch.embeddings import product_text
from refarch.errors import InputError


def test_product_text_from_a_product_a_mapping_and_a_row_object() -> None:
    product = Product(
        sku="S-1", name="Commuter Mug", description="Keeps coffee hot.", price=Decimal("9.99"),
        category="Drinkware",
    )
    expected = "Commuter Mug. Category: Drinkware. Keeps coffee hot."
    assert product_text(product) == expected
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


