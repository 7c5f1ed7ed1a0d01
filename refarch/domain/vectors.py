"""How a stored product appears in the vector index: its vector id and metadata.

The metadata holds what search filters on (category, price), what a result shows before
Postgres is read (id, sku, name), and the sync bookkeeping: the product's ``search_version``
as ``version`` and the :func:`~refarch.domain.text.content_hash` of the embedded text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refarch.domain.product import StoredProduct


def vector_id(product_id: int) -> str:
    """The index id of a product's vector."""
    return str(product_id)


def product_id_of(vid: str) -> int | None:
    """The product id of the vector ``vid``; ``None`` for a vector that is not a product's."""
    try:
        return int(vid)
    except ValueError:
        return None


def filter_metadata(product: StoredProduct) -> dict[str, Any]:
    """The fields a search filters on: ``price`` (a float) and ``category`` (absent when none)."""
    metadata: dict[str, Any] = {"price": float(product.price)}
    if product.category is not None:
        metadata["category"] = product.category
    return metadata


def vector_metadata(product: StoredProduct, text_hash: str) -> dict[str, Any]:
    """Metadata stored with a vector: filters (category, price) and sync bookkeeping."""
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        **filter_metadata(product),
        "version": product.search_version,
        "content_hash": text_hash,
    }


def version_and_hash(metadata: Mapping[str, Any] | None) -> tuple[int | None, str | None]:
    """The product version and text hash a vector's metadata records (``None`` where absent)."""
    metadata = metadata or {}
    version = metadata.get("version")
    return (int(version) if version is not None else None), metadata.get("content_hash")
