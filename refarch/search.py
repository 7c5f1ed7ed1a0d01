"""Semantic search: the index finds, Postgres answers (``refarch.search``; the CLI and the app).

:func:`search` embeds the query, asks the vector index for the ``top_k`` nearest products that
pass the filter (category and price only), then reads those rows from Postgres by id with one
parameterized query (:func:`refarch.db.products.get_products`) and returns them in the index's
score order, with scores: each :class:`SearchHit` is the
:class:`~refarch.domain.product.StoredProduct` as Postgres has it now. Postgres is the source
of truth for what is shown:

* an id the index still holds but Postgres no longer has (a delete not yet indexed) is dropped;
* a row whose *current* category or price no longer passes the filter (an edit not yet
  indexed) is dropped too, so a filter never shows a product that does not satisfy it;
* an empty index, or no match, is an empty result, not an error.

Each stage is timed (embed, index, postgres) for the benchmarks and the logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import psycopg

from refarch.db import products
from refarch.domain.product import StoredProduct
from refarch.domain.vectors import filter_metadata, product_id_of, version_and_hash
from refarch.errors import EmptyTextError, InputError
from refarch.index.filters import fields_of, matches, parse_filter
from refarch.logs import event

log = logging.getLogger("refarch.search")

#: The metadata fields a search may filter on.
FILTER_FIELDS: tuple[str, ...] = ("category", "price")
#: Pinecone's largest top_k.
MAX_TOP_K = 10_000

@dataclass(frozen=True, slots=True, kw_only=True)
class SearchHit(StoredProduct):
    """One result: the product as Postgres has it now (every StoredProduct field), plus what
    the index said about it."""

    #: The index's similarity score.
    score: float
    #: The version the index matched on; below ``search_version`` while an edit is in flight.
    indexed_version: int | None = None

    @classmethod
    def of(cls, product: StoredProduct, score: float, indexed_version: int | None) -> SearchHit:
        """The hit for ``product`` with the index's ``score`` and version."""
        stored = {f.name: getattr(product, f.name) for f in fields(StoredProduct)}
        return cls(**stored, score=score, indexed_version=indexed_version)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (price as a float): what ``refarch search --json`` prints."""
        return {
            "id": self.id, "score": self.score, "sku": self.sku, "name": self.name,
            "category": self.category, "price": float(self.price),
            "description": self.description, "version": self.version,
            "search_version": self.search_version, "indexed_version": self.indexed_version,
        }


@dataclass
class SearchResult:
    """Hits in score order, plus what was dropped and how long each stage took."""

    hits: list[SearchHit] = field(default_factory=list)
    #: Ids the index returned that Postgres no longer has.
    dropped_missing: int = 0
    #: Rows whose current values no longer pass the filter.
    dropped_filtered: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.hits)


def validate_filter(raw: Mapping[str, Any] | None) -> Any:
    """Parse a Pinecone-style filter on ``category`` and ``price``; returns its tree (or None).

    Raises :class:`~refarch.errors.InputError` naming an unknown field or a malformed part.
    """
    if raw is not None and not isinstance(raw, Mapping):
        raise InputError(f"filter must be a JSON object, got {type(raw).__name__}")
    node = parse_filter(dict(raw) if raw is not None else None)
    unknown = sorted(fields_of(node) - set(FILTER_FIELDS))
    if unknown:
        raise InputError(
            f"unknown filter field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(f) for f in unknown)}: search filters on "
            f"{' and '.join(FILTER_FIELDS)} only"
        )
    return node


def build_filter(
    categories: Iterable[str] = (),
    price_min: float | Decimal | None = None,
    price_max: float | Decimal | None = None,
) -> dict[str, Any] | None:
    """The filter for "any of these categories, price within [min, max]" (None: no filter)."""
    clauses: dict[str, Any] = {}
    chosen = [c for c in categories if c]
    if len(chosen) == 1:
        clauses["category"] = {"$eq": chosen[0]}
    elif chosen:
        clauses["category"] = {"$in": chosen}
    price: dict[str, float] = {}
    if price_min is not None:
        price["$gte"] = float(price_min)
    if price_max is not None:
        price["$lte"] = float(price_max)
    if price:
        clauses["price"] = price
    return clauses or None


def search(
    query: str,
    *,
    embedder: Any,
    index: Any,
    conn: psycopg.Connection,
    top_k: int = 10,
    filter: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Search the catalog (see the module docstring). Raises InputError for bad input."""
    if not isinstance(query, str) or not query.strip():
        raise EmptyTextError("the search query is empty: type what you are looking for")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {top_k!r}")
    node = validate_filter(filter)
    result = SearchResult()

    started = time.perf_counter()
    vector = embedder.encode_query(query.strip())
    result.timings["embed"] = time.perf_counter() - started

    started = time.perf_counter()
    matches_found = index.query(
        [float(x) for x in vector], top_k=top_k,
        filter=dict(filter) if node is not None and filter is not None else None,
    )
    result.timings["index"] = time.perf_counter() - started

    scored: list[tuple[int, float, int | None]] = []
    for match in matches_found:
        pid = product_id_of(match.id)
        if pid is None:
            continue  # not a product vector
        scored.append((pid, float(match.score), version_and_hash(match.metadata)[0]))

    started = time.perf_counter()
    rows = products.get_products(conn, [pid for pid, _, _ in scored])
    result.timings["postgres"] = time.perf_counter() - started

    for pid, score, indexed_version in scored:
        product = rows.get(pid)
        if product is None:
            result.dropped_missing += 1
            continue
        # The filter is checked against the row's current values, as the index will see them.
        if node is not None and not matches(node, filter_metadata(product)):
            result.dropped_filtered += 1
            continue
        result.hits.append(SearchHit.of(product, score, indexed_version))
    stage_seconds: dict[str, Any] = {f"{stage}_seconds": s for stage, s in result.timings.items()}
    event(
        log, "search", results=len(result.hits), top_k=top_k,
        dropped=result.dropped_missing + result.dropped_filtered, **stage_seconds,
    )
    return result
