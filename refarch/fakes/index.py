"""An in-memory :class:`refarch.index.port.VectorIndex`: exact brute-force search.

:class:`FakeVectorIndex` answers like the local index server behind the Pinecone SDK, and runs
the port-level contract tests beside it (``tests/contract/index/test_port.py``). It checks what
it is given with the server's own request validation (:mod:`refarch.index.server.requests`:
ids, dimension, finite non-zero values, metadata types and the 40 KB metadata limit) and
evaluates filters with :mod:`refarch.index.filters`, so a request the server refuses is
refused here too, the same way: :class:`~refarch.errors.IndexRejectedError` carrying the HTTP
status the server would answer with, as the Pinecone adapter raises it. Scores follow
Pinecone: cosine similarity, dot product, or the *squared* euclidean distance (smaller is
better).

Namespaces share one store: :meth:`FakeVectorIndex.in_namespace` gives the same index bound to
another namespace, and :meth:`~FakeVectorIndex.stats` counts them all. Setting ``down`` makes
every call fail as an unreachable index does (no status: not the record's fault); setting
``writes_down`` makes only upserts and deletes fail that way (a full disk, a write quota) while
reads answer, in every namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from refarch.errors import IndexRejectedError, IndexServiceError
from refarch.index.filters import Node, matches
from refarch.index.port import IndexStats, QueryMatch, Record
from refarch.index.server import requests as rq
from refarch.index.server.api_errors import ApiError

METRICS = ("cosine", "dotproduct", "euclidean")


def _as_list(values: Sequence[float]) -> list[Any]:
    """Values as the JSON list the SDK would send (numpy arrays included)."""
    tolist = getattr(values, "tolist", None)
    return list(tolist() if tolist else values)


def _refused(what: str, error: ApiError) -> IndexRejectedError:
    """The error the Pinecone adapter raises when the index refuses a request's content."""
    return IndexRejectedError(f"vector index refused the {what}: ({error.status}) {error.message}",
                              error.status)


class _Store:
    """What every namespace view of one fake index shares."""

    def __init__(self, dimension: int, metric: str) -> None:
        self.dimension = dimension
        self.metric = metric
        self.namespaces: dict[str, dict[str, tuple[np.ndarray, dict[str, Any] | None]]] = {}
        self.lock = threading.Lock()
        self.down = False
        self.writes_down = False


class FakeVectorIndex:
    """A vector index in memory, bound to one namespace (see the module docstring)."""

    def __init__(
        self,
        dimension: int = 384,
        metric: str = "cosine",
        namespace: str = "",
        *,
        _store: _Store | None = None,
    ) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        if not 1 <= dimension <= rq.MAX_DIMENSION:
            raise ValueError(f"dimension must be between 1 and {rq.MAX_DIMENSION}, got {dimension}")
        self._store = _store if _store is not None else _Store(dimension, metric)
        self.namespace = self._checked("namespace", rq.namespace, namespace)

    def __repr__(self) -> str:
        return (f"FakeVectorIndex(dimension={self.dimension}, metric={self.metric!r}, "
                f"namespace={self.namespace!r})")

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._store.dimension

    @property
    def metric(self) -> str:
        """``cosine``, ``dotproduct`` or ``euclidean``."""
        return self._store.metric

    @property
    def down(self) -> bool:
        """While true, every call raises :class:`IndexServiceError` (an outage)."""
        return self._store.down

    @down.setter
    def down(self, value: bool) -> None:
        self._store.down = value

    @property
    def writes_down(self) -> bool:
        """While true, upserts and deletes raise :class:`IndexServiceError`; reads answer."""
        return self._store.writes_down

    @writes_down.setter
    def writes_down(self, value: bool) -> None:
        self._store.writes_down = value

    def in_namespace(self, namespace: str) -> FakeVectorIndex:
        """This index bound to ``namespace`` (the same store)."""
        return FakeVectorIndex(namespace=namespace, _store=self._store)

    def close(self) -> None:
        """Nothing to release."""

    # -- checks ------------------------------------------------------------------------------

    def _checked(self, what: str, check: Any, *args: Any, **kwargs: Any) -> Any:
        """``check(*args)``, with the server's ApiError turned into the port's error."""
        try:
            return check(*args, **kwargs)
        except ApiError as exc:
            raise _refused(what, exc) from exc

    def _available(self, what: str) -> dict[str, tuple[np.ndarray, dict[str, Any] | None]]:
        if self._store.down:
            raise IndexServiceError(f"vector index {what} failed: the index is unreachable (down)")
        if self._store.writes_down and what in ("upsert", "delete"):
            raise IndexServiceError(
                f"vector index {what} failed: (507) the index cannot write (writes_down)")
        return self._store.namespaces.setdefault(self.namespace, {})

    # -- the port ----------------------------------------------------------------------------

    def upsert(self, records: Sequence[Record]) -> int:
        """Insert or overwrite records (all checked first; a bad one writes nothing)."""
        ids, rows, metadata = [], [], []
        for i, (vid, values, meta) in enumerate(records):
            ids.append(self._checked("upsert", rq.vector_id, vid, f"vectors[{i}].id"))
            rows.append(_as_list(values))
            checked, _ = self._checked("upsert", rq.metadata, dict(meta) if meta else None,
                                       f"vectors[{i}].metadata")
            metadata.append(checked)
        matrix = self._checked("upsert", rq.values_matrix, rows, self.dimension, "vectors[{}].values")
        with self._store.lock:
            stored = self._available("upsert")
            for vid, vector, meta in zip(ids, matrix, metadata, strict=True):
                stored[vid] = (vector.copy(), meta)
        return len(ids)

    def fetch(self, ids: Sequence[str]) -> dict[str, tuple[list[float], dict[str, Any]]]:
        """The stored records among ``ids``: id -> (values, metadata)."""
        wanted = [self._checked("fetch", rq.vector_id, vid, f"ids[{i}]") for i, vid in enumerate(ids)]
        with self._store.lock:
            stored = self._available("fetch")
            return {
                vid: ([float(x) for x in stored[vid][0]], dict(stored[vid][1] or {}))
                for vid in wanted if vid in stored
            }

    def delete(self, ids: Sequence[str]) -> None:
        """Delete records by id (unknown ids are ignored)."""
        doomed = [self._checked("delete", rq.vector_id, vid, f"ids[{i}]") for i, vid in enumerate(ids)]
        with self._store.lock:
            stored = self._available("delete")
            for vid in doomed:
                stored.pop(vid, None)

    def query(
        self,
        vector: Sequence[float],
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        include_values: bool = False,
    ) -> list[QueryMatch]:
        """The ``top_k`` best records passing ``filter``, best first (ties: oldest write first)."""
        k = self._checked("query", rq.top_k, top_k)
        node: Node | None = self._checked("query", rq.metadata_filter, dict(filter) if filter else None)
        query = self._checked("query", rq.values_matrix, [_as_list(vector)], self.dimension, "vector",
                              allow_zero=self.metric != "cosine")[0].astype(np.float64)
        with self._store.lock:
            stored = self._available("query")
            candidates = [(vid, values, meta) for vid, (values, meta) in stored.items()
                          if matches(node, meta)]
        scored = [(self._score(values, query), vid, values, meta) for vid, values, meta in candidates]
        # A stable sort keeps insertion order among equal scores.
        scored.sort(key=lambda item: item[0] if self.metric == "euclidean" else -item[0])
        return [
            QueryMatch(
                id=vid,
                score=score,
                metadata=dict(meta or {}),
                values=[float(x) for x in values] if include_values else None,
            )
            for score, vid, values, meta in scored[:k]
        ]

    def _score(self, values: np.ndarray, query: np.ndarray) -> float:
        v = values.astype(np.float64)
        if self.metric == "euclidean":
            return float(((v - query) ** 2).sum())
        if self.metric == "dotproduct":
            return float(v @ query)
        return float((v @ query) / (np.linalg.norm(v) * np.linalg.norm(query)))

    def list_ids(self, prefix: str | None = None) -> Iterator[str]:
        """Every record id (starting with ``prefix``), sorted."""
        with self._store.lock:
            ids = sorted(self._available("list"))
        yield from (vid for vid in ids if prefix is None or vid.startswith(prefix))

    def count(self) -> int:
        """How many records this namespace holds."""
        with self._store.lock:
            return len(self._available("stats"))

    def stats(self) -> IndexStats:
        """Counts for the whole index (namespaces that hold records)."""
        with self._store.lock:
            self._available("stats")
            namespaces = {name: len(records) for name, records in self._store.namespaces.items() if records}
        return IndexStats(
            total=sum(namespaces.values()), namespaces=namespaces,
            dimension=self.dimension, metric=self.metric,
        )
