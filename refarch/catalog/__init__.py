"""Product catalogs: the :class:`Product` record, a generator of realistic products, a CSV reader.

* :func:`generate_products` streams deterministic, realistic products built from the spec
  table :data:`CATEGORIES` (see :mod:`refarch.catalog.categories`).
* :func:`read_catalog_csv` / :func:`iter_catalog_csv` read a CSV catalog, reporting bad
  records as :class:`RowError`\\ s (format: :mod:`refarch.catalog.csv_loader`).
* :func:`products_to_frame` turns products into a pandas DataFrame for notebooks.
"""

from refarch.catalog.categories import (
    ATTRIBUTE_KEYS,
    CATEGORIES,
    LIST_SEPARATOR,
    CategorySpec,
    ProductType,
    find_type,
    labelled_queries,
)
from refarch.catalog.csv_loader import (
    CatalogReadResult,
    RowError,
    iter_catalog_csv,
    read_catalog_csv,
    sample_catalog_path,
)
from refarch.catalog.frame import products_to_frame
from refarch.catalog.generator import generate_products
from refarch.domain.product import Product

__all__ = [
    "ATTRIBUTE_KEYS",
    "CATEGORIES",
    "LIST_SEPARATOR",
    "CatalogReadResult",
    "CategorySpec",
    "Product",
    "ProductType",
    "RowError",
    "find_type",
    "generate_products",
    "iter_catalog_csv",
    "labelled_queries",
    "products_to_frame",
    "read_catalog_csv",
    "sample_catalog_path",
]
