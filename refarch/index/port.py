"""The vector index port: the few operations refarch needs, whatever index is behind them.

:class:`VectorIndex` is what the sync pipeline, search and reconcile depend on. Its one adapter,
:class:`PineconeVectorIndex`, drives a ``pinecone.Index`` from the real Pinecone SDK, so it
works unchanged against Pinecone's cloud and against the local server
(:func:`refarch.bootstrap.make_index` builds it from settings). The adapter splits
writes to respect Pinecone's request limits (1,000 records and 2 MB per upsert, 1,000 ids per
fetch or delete) and turns SDK errors into :class:`~refarch.errors.IndexServiceError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import orjson

from refarch.errors import IndexRejectedError, IndexServiceError

if TYPE_CHECKING:
    from pinecone import Index

_T = TypeVar("_T")

#: One record to write: (id, dense values, metadata or None).
Record = tuple[str, Sequence[float], Mapping[str, Any] | None]

#: Pinecone's request limits.
MAX_UPSERT_RECORDS = 1_000
MAX_UPSERT_BYTES = 2 * 1024 * 1024
MAX_IDS_PER_REQUEST = 1_000
#: HTTP statuses with which an index refuses a request's content (not an outage).
REJECTION_STATUSES = frozenset({400, 413, 422})
# Room left in a 2 MB upsert request for the envelope and encoding differences.
_UPSERT_BUDGET = MAX_UPSERT_BYTES - 64 * 1024


@dataclass(frozen=True)
class QueryMatch:
    """One query result, best first in a result list."""

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    values: list[float] | None = None


@dataclass(frozen=True)
class IndexStats:
    """What an index holds: vectors in total and per namespace, dimension and metric."""

    total: int
    namespaces: dict[str, int]
    dimension: int | None
    metric: str | None


@runtime_checkable
class VectorIndex(Protocol):
    """A vector index bound to one namespace (see the module docstring)."""

    def upsert(self, records: Sequence[Record]) -> int:
        """Insert or overwrite records; returns how many were written."""
        ...

    def fetch(self, ids: Sequence[str]) -> dict[str, tuple[list[float], dict[str, Any]]]:
        """The stored records among ``ids``: id -> (values, metadata)."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (unknown ids are ignored)."""
        ...

    def query(
        self,
        vector: Sequence[float],
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        include_values: bool = False,
    ) -> list[QueryMatch]:
        """The ``top_k`` nearest records passing ``filter``, best first, with metadata."""
        ...

    def list_ids(self, prefix: str | None = None) -> Iterator[str]:
        """Every record id (starting with ``prefix``), page by page."""
        ...

    def count(self) -> int:
        """How many records the namespace holds."""
        ...

    def stats(self) -> IndexStats:
        """Counts for the whole index."""
        ...

    def close(self) -> None:
        """Release the index's connections (it is not usable afterwards)."""
        ...

    def in_namespace(self, namespace: str) -> VectorIndex:
        """The same index bound to ``namespace`` (sharing this one's connections)."""
        ...


def _values(values: Sequence[float]) -> list[float]:
    tolist = getattr(values, "tolist", None)
    return [float(x) for x in (tolist() if tolist else values)]


def _encoded_size(item: Mapping[str, Any]) -> int:
    return len(orjson.dumps(item)) + 1


def upsert_batches(items: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split upsert items into requests within Pinecone's count and size limits."""
    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_size = _encoded_size(item)
        if item_size > _UPSERT_BUDGET:
            raise IndexRejectedError(
                f"record {item.get('id')!r} is {item_size:,} bytes encoded, more than one "
                f"upsert request may carry (2 MB); shrink its metadata", 413
            )
        if batch and (len(batch) == MAX_UPSERT_RECORDS or size + item_size > _UPSERT_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
        yield list(ids[start : start + MAX_IDS_PER_REQUEST])


class PineconeVectorIndex:
    """:class:`VectorIndex` over a ``pinecone.Index`` (cloud or local server)."""

    def __init__(self, index: Index, namespace: str = "") -> None:
        self.index = index
        self.namespace = namespace

    def _call(self, what: str, fn: Callable[..., _T], **kwargs: Any) -> _T:
        from pinecone.errors.exceptions import PineconeError

        try:
            return fn(**kwargs)
        except PineconeError as exc:
            status = getattr(exc, "status_code", None)
            if status in REJECTION_STATUSES:
                raise IndexRejectedError(f"vector index refused the {what}: {exc}", status) from exc
            raise IndexServiceError(f"vector index {what} failed: {exc}") from exc

    def close(self) -> None:
        self.index.close()

    def in_namespace(self, namespace: str) -> PineconeVectorIndex:
        return PineconeVectorIndex(self.index, namespace=namespace)

    def upsert(self, records: Sequence[Record]) -> int:
        items = []
        for vid, values, metadata in records:
            item: dict[str, Any] = {"id": vid, "values": _values(values)}
            if metadata:
                item["metadata"] = dict(metadata)
            items.append(item)
        written = 0
        for batch in upsert_batches(items):
            response = self._call("upsert", self.index.upsert, vectors=batch,
                                  namespace=self.namespace, show_progress=False)
            written += int(response.upserted_count)
        return written

    def fetch(self, ids: Sequence[str]) -> dict[str, tuple[list[float], dict[str, Any]]]:
        found: dict[str, tuple[list[float], dict[str, Any]]] = {}
        for chunk in _chunks(ids):
            response = self._call("fetch", self.index.fetch, ids=chunk, namespace=self.namespace)
            for vid, vector in response.vectors.items():
                found[vid] = (list(vector.values), dict(vector.metadata or {}))
        return found

    def delete(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(ids):
            self._call("delete", self.index.delete, ids=chunk, namespace=self.namespace)

    def query(
        self,
        vector: Sequence[float],
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        include_values: bool = False,
    ) -> list[QueryMatch]:
        response = self._call(
            "query", self.index.query, vector=_values(vector), top_k=top_k,
            filter=dict(filter) if filter else None, include_metadata=True,
            include_values=include_values, namespace=self.namespace,
        )
        return [
            QueryMatch(
                id=match.id,
                score=float(match.score),
                metadata=dict(match.metadata or {}),
                values=list(match.values) if include_values else None,
            )
            for match in response.matches
        ]

    def list_ids(self, prefix: str | None = None) -> Iterator[str]:
        pages = self._call("list", self.index.list, prefix=prefix, namespace=self.namespace)
        try:
            for page in pages:
                for item in page.vectors:
                    if item.id is not None:
                        yield item.id
        except Exception as exc:
            from pinecone.errors.exceptions import PineconeError

            if isinstance(exc, PineconeError):
                raise IndexServiceError(f"vector index list failed: {exc}") from exc
            raise

    def stats(self) -> IndexStats:
        response = self._call("stats", self.index.describe_index_stats)
        namespaces = {name: int(ns.vector_count) for name, ns in response.namespaces.items()}
        return IndexStats(
            total=int(response.total_vector_count),
            namespaces=namespaces,
            dimension=response.dimension,
            metric=response.metric,
        )

    def count(self) -> int:
        return self.stats().namespaces.get(self.namespace, 0)
