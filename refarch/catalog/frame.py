"""Products as a pandas DataFrame, for notebooks and quick analysis."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from refarch.domain.product import Product

if TYPE_CHECKING:
    import pandas as pd

#: The Product fields, in the order they appear as the frame's first columns.
PRODUCT_COLUMNS: tuple[str, ...] = (
    "sku", "name", "category", "price", "last_updated", "description",
)


def products_to_frame(products: Iterable[Product]) -> pd.DataFrame:
    """One row per product: the Product fields, then one column per attribute key.

    ``price`` becomes a float (for display and arithmetic), ``last_updated`` a UTC datetime
    column; a product without some attribute has NaN in that column.
    """
    import pandas as pd

    rows = []
    for product in products:
        row = {
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "price": float(product.price),
            "last_updated": product.last_updated,
            "description": product.description,
        }
        for key, value in product.attributes.items():
            row.setdefault(key, value)  # an attribute never hides a Product field
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else list(PRODUCT_COLUMNS))
    if rows:
        frame["last_updated"] = pd.to_datetime(frame["last_updated"], utc=True)
    return frame
