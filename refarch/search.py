"""Semantic search: the index finds, Postgres answers (``refarch.search``; the CLI and the app).

:func:`search` embeds the query, asks the vector index for the ``top_k`` nearest products that
pass the filter (category and price only), then reads those rows from Postgres by id with one
parameterized query and returns them in the index's score order, with scores. Postgres is the
source of truth for what is shown:

* an id the index still holds but Postgres no longer has (a delete not yet indexed) is dropped;
* a row whose *current* category or price no longer passes the filter (an edit not yet
  indexed) is dropped too, so a filter never shows a product that does not satisfy it;
* an empty index, or no match, is an empty result, not an error.

Each stage is timed (embed, index, postgres) for the benchmarks and the logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from refarch.errors import EmptyTextError, InputError
from refarch.index.filters import fields_of, matches, parse_filter
from refarch.logs import event

log = logging.getLogger("refarch.search")

#: The metadata fields a search may filter on.
FILTER_FIELDS: tuple[str, ...] = ("category", "price")
#: Pinecone's largest top_k.
MAX_TOP_K = 10_000

_ROWS_SQL = (
    "SELECT id, sku, name, category, description, price, version, search_version "
    "FROM products WHERE id = ANY(%s)"
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result: the product as Postgres has it now, and the index's similarity score."""

    id: int
    score: float
    sku: str
    name: str
    category: str | None
    description: str
    price: Decimal
    version: int
    search_version: int
    #: The version the index matched on; below ``search_version`` while an edit is in flight.
    indexed_version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (price as a float)."""
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


def read_rows(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Rows by id (one parameterized query), keyed by id."""
    if not ids:
        return {}
    return {int(row[0]): tuple(row) for row in conn.execute(_ROWS_SQL, (list(ids),)).fetchall()}


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
        [float(x) for x in vector], top_k=top_k, filter=dict(filter) if node is not None else None
    )
    result.timings["index"] = time.perf_counter() - started

    scored: list[tuple[int, float, int | None]] = []
    for match in matches_found:
        try:
            pid = int(match.id)
        except ValueError:
            continue  # not a product vector
        version = (match.metadata or {}).get("version")
        scored.append((pid, float(match.score), int(version) if version is not None else None))

    started = time.perf_counter()
    rows = read_rows(conn, [pid for pid, _, _ in scored])
    result.timings["postgres"] = time.perf_counter() - started

    for pid, score, indexed_version in scored:
        row = rows.get(pid)
        if row is None:
            result.dropped_missing += 1
            continue
        _, sku, name, category, description, price, version, search_version = row
        current = {"price": float(price)}
        if category is not None:
            current["category"] = category
        if node is not None and not matches(node, current):
            result.dropped_filtered += 1
            continue
        result.hits.append(
            SearchHit(pid, score, sku, name, category, description or "", Decimal(price),
                      int(version), int(search_version), indexed_version)
        )
    event(
        log, "search", results=len(result.hits), top_k=top_k,
        dropped=result.dropped_missing + result.dropped_filtered,
        **{f"{stage}_seconds": seconds for stage, seconds in result.timings.items()},
    )
    return result
