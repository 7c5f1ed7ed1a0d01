"""Index a product catalog straight into the vector index (no Postgres), and show what it finds.

This is the notebook-stage path: the sync pipeline (:mod:`refarch.pipeline.indexer`) is the production
one, keyed by the Postgres id. Catalog records use the SKU as vector id and carry ``sku``,
``name``, ``category`` (when known) and ``price`` as metadata, enough to filter on category
and price and to show a result without a database. They go to their own namespace
(:data:`CATALOG_NAMESPACE`) so they never mix with the pipeline's records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from refarch.domain.product import Product
from refarch.index.port import QueryMatch, Record, VectorIndex

if TYPE_CHECKING:
    import numpy as np

    from refarch.embeddings import Embedder

#: The namespace ``refarch index-catalog`` writes to (the pipeline owns the default one).
CATALOG_NAMESPACE = "catalog"


def catalog_metadata(product: Product) -> dict[str, Any]:
    """The metadata stored with a catalog product's vector (no description: it is large)."""
    metadata: dict[str, Any] = {"sku": product.sku, "name": product.name,
                                "price": float(product.price)}
    if product.category:
        metadata["category"] = product.category
    return metadata


def catalog_records(
    products: Sequence[Product], vectors: Sequence[Sequence[float]] | np.ndarray
) -> list[Record]:
    """``(sku, vector, metadata)`` records for products and their embeddings (one row each)."""
    if len(products) != len(vectors):
        raise ValueError(f"{len(products)} products but {len(vectors)} vectors")
    return [(p.sku, v, catalog_metadata(p)) for p, v in zip(products, vectors, strict=True)]


def index_catalog(
    index: VectorIndex,
    products: Iterable[Product],
    embedder: Embedder,
    *,
    batch_size: int = 512,
    progress: bool = True,
) -> int:
    """Embed ``products`` (``product_text``) and upsert them in batches; returns how many.

    A progress bar counts indexed products.
    """
    from tqdm import tqdm

    from refarch.embeddings import product_text

    items = list(products)
    written = 0
    with tqdm(total=len(items), desc="Indexing", unit="product", disable=not progress) as bar:
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            vectors = embedder.encode([product_text(p) for p in batch], progress=False)
            written += index.upsert(catalog_records(batch, vectors))
            bar.update(len(batch))
    return written


def match_rows(matches: Sequence[QueryMatch]) -> list[dict[str, Any]]:
    """Results as plain dicts: id, sku, name, category, price, score (best first)."""
    return [
        {
            "id": m.id,
            "sku": m.metadata.get("sku", m.id),
            "name": m.metadata.get("name"),
            "category": m.metadata.get("category"),
            "price": m.metadata.get("price"),
            "score": m.score,
        }
        for m in matches
    ]


def render_matches(matches: Sequence[QueryMatch], as_json: bool = False) -> str:
    """Results as a JSON list (``as_json``) or as an aligned, ranked table."""
    rows = match_rows(matches)
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "no results"
    lines = [f"{'#':>3}  {'score':>6}  {'sku':<14} {'price':>9}  {'category':<18} name"]
    for rank, row in enumerate(rows, 1):
        price = f"{row['price']:.2f}" if isinstance(row["price"], (int, float)) else "-"
        lines.append(
            f"{rank:>3}  {row['score']:6.3f}  {str(row['sku'])[:14]:<14} {price:>9}  "
            f"{str(row['category'] or '-')[:18]:<18} {row['name'] or ''}"
        )
    return "\n".join(lines)
