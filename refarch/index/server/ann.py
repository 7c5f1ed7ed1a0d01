"""One namespace's vectors in memory: an HNSW graph for approximate search, exact search beside it.

* Every vector id gets a *label* (a small integer, reused after deletes). The raw vectors live
  in :class:`VectorStore` (float32, normalised for cosine) and, once indexed, also in the
  HNSW graph (hnswlib's API, from the ``chroma-hnswlib`` wheel: see
  :mod:`~refarch.index.server.graph_files`); metadata lives in
  :class:`~refarch.index.server.columns.MetadataColumns`.
* A write is visible at once: a new or changed vector becomes *pending* (its old graph entry,
  if any, is marked deleted) and pending vectors are searched exactly until the background
  indexer (:meth:`NamespaceIndex.index_pending`) has put them into the graph. A bulk load
  that leaves more than ``exact_pending_limit`` pending is searched from the graph alone
  until the indexer catches up (eventual consistency, as on Pinecone).
* Unfiltered queries search the graph. Filtered queries build the filter's mask over labels
  first; when scoring the matches exactly is cheaper than the graph search that would find
  them (and there are at most ``exact_limit``), they are scored exactly; otherwise an
  oversampled graph search keeps the matches, falling back to a filtered graph walk and then
  to exact search when that finds too few. Every returned score is recomputed exactly from the stored
  vector, so the path a query took never shows in its scores.

Not thread-safe by itself: :class:`~refarch.index.server.engine.IndexEngine` holds a
readers-writer lock around it.
"""

from __future__ import annotations

import io
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import hnswlib
import numpy as np

from refarch.index.filters import Node
from refarch.index.server.columns import MetadataColumns
from refarch.index.server.graph_files import new_graph
from refarch.index.server.tuning import Tuning

_CHUNK_SHIFT = 15
_CHUNK_ROWS = 1 << _CHUNK_SHIFT
_MAX_OVERSAMPLE = 4096
# A graph step costs about 2.5 exact scorings (measured: ~6 us vs ~2.5 us at 384-d once the
# candidates no longer fit in cache). A filtered query is answered exactly while that costs at
# most about 2x the oversampled graph search: exact answers are worth it (perfect recall).
_EXACT_PER_GRAPH_STEP = 5.0


class VectorStore:
    """Float32 vectors by label, in fixed-size chunks (growing never copies what is stored)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.chunks: list[np.ndarray] = []

    @property
    def capacity(self) -> int:
        """Labels that fit without allocating another chunk."""
        return len(self.chunks) * _CHUNK_ROWS

    def ensure(self, size: int) -> None:
        """Make room for labels below ``size`` (new chunks are zero pages until written)."""
        while self.capacity < size:
            self.chunks.append(np.zeros((_CHUNK_ROWS, self.dim), dtype=np.float32))

    def set(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` under ``labels[i]``."""
        chunk_of = labels >> _CHUNK_SHIFT
        rows = labels & (_CHUNK_ROWS - 1)
        first = int(chunk_of[0])
        if int(chunk_of.min()) == first == int(chunk_of.max()):
            self.chunks[first][rows] = vectors
            return
        for chunk in np.unique(chunk_of):
            sel = chunk_of == chunk
            self.chunks[int(chunk)][rows[sel]] = vectors[sel]

    def get(self, labels: np.ndarray) -> np.ndarray:
        """The vectors of ``labels``, as one (len(labels), dim) array."""
        labels = np.asarray(labels, dtype=np.int64)
        chunk_of = labels >> _CHUNK_SHIFT
        rows = labels & (_CHUNK_ROWS - 1)
        if len(labels):
            first = int(chunk_of[0])
            if int(chunk_of.min()) == first == int(chunk_of.max()):
                one_chunk: np.ndarray = self.chunks[first][rows]
                return one_chunk
        out = np.empty((len(labels), self.dim), dtype=np.float32)
        for chunk in np.unique(chunk_of):
            sel = chunk_of == chunk
            out[sel] = self.chunks[int(chunk)][rows[sel]]
        return out

    def save(self, stream: BinaryIO, size: int) -> None:
        """Write the first ``size`` rows, raw float32, chunk by chunk (no full copy)."""
        for index, chunk in enumerate(self.chunks):
            rows = min(_CHUNK_ROWS, size - index * _CHUNK_ROWS)
            if rows <= 0:
                break
            stream.write(np.ascontiguousarray(chunk[:rows]).data.cast("B"))

    def load(self, stream: io.BufferedIOBase, size: int) -> None:
        """Read ``size`` rows written by :meth:`save` straight into fresh chunks."""
        self.chunks = []
        self.ensure(size)
        for index, chunk in enumerate(self.chunks):
            rows = min(_CHUNK_ROWS, size - index * _CHUNK_ROWS)
            if rows <= 0:
                break
            view = chunk[:rows].data.cast("B")
            if stream.readinto(view) != len(view):
                raise ValueError("vector file is shorter than its snapshot says")


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    grown = np.zeros(size, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class NamespaceIndex:
    """The searchable state of one namespace (see the module docstring)."""

    def __init__(self, name: str, dim: int, metric: str, tuning: Tuning) -> None:
        self.name = name
        self.dim = dim
        self.metric = metric
        self.tuning = tuning
        self.ids: list[str | None] = []
        self.id_to_label: dict[str, int] = {}
        self.free: list[int] = []
        self.size = 0
        self.alive = np.zeros(0, dtype=np.bool_)
        self.in_graph = np.zeros(0, dtype=np.bool_)
        self.pending = np.zeros(0, dtype=np.bool_)
        #: Sequence number of the write that gave each label its current vector.
        self.label_seq = np.zeros(0, dtype=np.int64)
        self.pending_queue: deque[int] = deque()
        self.live_count = 0
        self.graph_count = 0
        self.pending_count = 0
        self.vectors = VectorStore(dim)
        self.columns = MetadataColumns()
        self.graph: hnswlib.Index | None = None
        #: Highest write sequence number applied to this state.
        self.applied_seq = 0
        #: Sequence number of the last durable snapshot, and changes applied since.
        self.snapshot_seq = 0
        self.changes_since_snapshot = 0
        #: Vectors moved into the graph since the last snapshot (the graph changed too).
        self.indexed_since_snapshot = 0
        self.last_write = time.monotonic()

    @property
    def ef_search(self) -> int:
        """Search breadth for the graph's current size; inner product is not a metric, so HNSW
        needs a wider search for it."""
        return self.tuning.ef_for(self.graph_count) * (2 if self.metric == "dotproduct" else 1)

    def _update_ef(self) -> None:
        """Widen (or narrow) the graph's search list after its size changed."""
        if self.graph is not None and self.graph.ef != self.ef_search:
            self.graph.set_ef(self.ef_search)

    # -- vectors and labels -------------------------------------------------------------------

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as stored: float32, rows normalised for cosine (callers reject zero rows)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1, norms)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _ensure(self, size: int) -> None:
        if size <= len(self.alive):
            return
        capacity = max(size, int(len(self.alive) * 1.5), 1024)
        self.alive = _grow(self.alive, capacity)
        self.in_graph = _grow(self.in_graph, capacity)
        self.pending = _grow(self.pending, capacity)
        self.label_seq = _grow(self.label_seq, capacity)
        self.ids.extend([None] * (capacity - len(self.ids)))
        self.vectors.ensure(capacity)
        self.columns.ensure(capacity)

    def _new_label(self, vector_id: str) -> int:
        if self.free:
            label = self.free.pop()
        else:
            label = self.size
            self.size += 1
            self._ensure(self.size)
        self.ids[label] = vector_id
        self.id_to_label[vector_id] = label
        self.alive[label] = True
        self.live_count += 1
        return label

    def _unindex(self, label: int) -> None:
        if self.in_graph[label]:
            assert self.graph is not None
            self.graph.mark_deleted(label)
            self.in_graph[label] = False
            self.graph_count -= 1

    def _mark_pending(self, label: int) -> None:
        if not self.pending[label]:
            self.pending[label] = True
            self.pending_count += 1
            self.pending_queue.append(label)

    def _touch(self, seq: int, changes: int) -> None:
        self.applied_seq = max(self.applied_seq, seq)
        self.changes_since_snapshot += changes
        self.last_write = time.monotonic()

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[Mapping[str, Any] | None] | None,
        seq: int,
    ) -> None:
        """Insert or overwrite vectors (already prepared); ``metadatas=None`` keeps metadata."""
        labels = np.empty(len(ids), dtype=np.int64)
        for i, vector_id in enumerate(ids):
            label = self.id_to_label.get(vector_id)
            if label is None:
                label = self._new_label(vector_id)
            else:
                self._unindex(label)
            labels[i] = label
            self._mark_pending(label)
            if metadatas is not None:
                self.columns.set(label, metadatas[i])
        if len(labels):
            self.vectors.set(labels, vectors)
            self.label_seq[labels] = seq
        self._touch(seq, len(ids))

    def set_metadata(self, ids: Sequence[str], metadatas: Sequence[Mapping[str, Any]], seq: int) -> None:
        """Replace the metadata of existing ids (merging is the caller's job)."""
        for vector_id, metadata in zip(ids, metadatas, strict=True):
            label = self.id_to_label.get(vector_id)
            if label is not None:
                self.columns.set(label, metadata)
        self._touch(seq, len(ids))

    def delete(self, ids: Sequence[str], seq: int) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""
        removed = 0
        for vector_id in ids:
            label = self.id_to_label.pop(vector_id, None)
            if label is None:
                continue
            self._unindex(label)
            if self.pending[label]:
                self.pending[label] = False
                self.pending_count -= 1
            self.columns.clear(label)
            self.ids[label] = None
            self.alive[label] = False
            self.live_count -= 1
            self.free.append(label)
            removed += 1
        self._touch(seq, removed)
        return removed

    def searchable_seq(self) -> int:
        """The last write sequence number whose vectors queries see (all of them, unless a
        bulk load has outrun the indexer)."""
        if self.pending_count <= self.tuning.exact_pending_limit:
            return self.applied_seq
        return int(self.label_seq[: self.size][self.pending[: self.size]].min()) - 1

    def ids_of(self, labels: np.ndarray) -> list[str]:
        """The vector ids of live labels (from :meth:`search` or :meth:`filter_mask`)."""
        ids: list[str] = []
        for label in labels:
            vector_id = self.ids[int(label)]
            if vector_id is None:  # only a bug could hand us a free label
                raise LookupError(f"label {int(label)} of namespace {self.name!r} is free")
            ids.append(vector_id)
        return ids

    def vector_of(self, vector_id: str) -> np.ndarray | None:
        """The stored (prepared) vector of an id, or ``None``."""
        label = self.id_to_label.get(vector_id)
        if label is None:
            return None
        vector: np.ndarray = self.vectors.get(np.asarray([label]))[0]
        return vector.copy()

    # -- the background indexer --------------------------------------------------------------

    def _ensure_graph(self, extra: int) -> hnswlib.Index:
        if self.graph is None:
            graph = new_graph(self.metric, self.dim)
            graph.init_index(
                max_elements=max(1024, len(self.alive), extra),
                M=self.tuning.hnsw_m,
                ef_construction=self.tuning.ef_construction,
                random_seed=42,
            )
            graph.set_ef(self.ef_search)
            self.graph = graph
        needed = self.graph.element_count + extra
        if needed > self.graph.max_elements:
            self.graph.resize_index(max(needed, int(self.graph.max_elements * 1.5)))
        return self.graph

    def index_pending(self, limit: int) -> int:
        """Move up to ``limit`` pending vectors into the graph; returns how many moved."""
        chosen: list[int] = []
        seen: set[int] = set()
        while self.pending_queue and len(chosen) < limit:
            label = self.pending_queue.popleft()
            if self.pending[label] and label not in seen:
                seen.add(label)
                chosen.append(label)
        if not chosen:
            return 0
        labels = np.asarray(chosen, dtype=np.int64)
        graph = self._ensure_graph(len(labels))
        graph.add_items(self.vectors.get(labels), labels, num_threads=self.tuning.index_threads)
        self.pending[labels] = False
        self.pending_count -= len(labels)
        self.in_graph[labels] = True
        self.graph_count += len(labels)
        self._update_ef()
        self.indexed_since_snapshot += len(labels)
        return len(labels)

    # -- search ------------------------------------------------------------------------------

    def filter_mask(self, node: Node | None) -> np.ndarray:
        """Live labels (below ``size``) that pass ``node``."""
        alive = self.alive[: self.size]
        if node is None:
            return alive.copy()
        return self.columns.evaluate(node, self.size) & alive

    def _score(self, labels: np.ndarray, query: np.ndarray) -> np.ndarray:
        vectors = self.vectors.get(labels)
        if self.metric == "euclidean":
            diff = vectors - query
            squared_distances: np.ndarray = np.einsum("ij,ij->i", diff, diff)
            return squared_distances
        products: np.ndarray = vectors @ query
        return products

    def _best(self, labels: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        key = scores if self.metric == "euclidean" else -scores
        if len(key) > k:
            top = np.argpartition(key, k - 1)[:k]
            labels, scores, key = labels[top], scores[top], key[top]
        order = np.lexsort((labels, key))
        return labels[order], scores[order]

    def _exact(self, labels: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(labels) == 0:
            return labels.astype(np.int64), np.zeros(0, dtype=np.float32)
        return self._best(labels, self._score(labels, query), k)

    def _graph_knn(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Up to ``k`` labels from the graph; exact search over the graph's labels on failure."""
        assert self.graph is not None
        try:
            if allowed is None:
                labels, _ = self.graph.knn_query(query, k=k, num_threads=1)
            else:
                flags = allowed.tobytes()
                labels, _ = self.graph.knn_query(
                    query, k=k, num_threads=1, filter=lambda label: flags[label] == 1
                )
            return np.asarray(labels[0], dtype=np.int64)
        except RuntimeError:
            # hnswlib found fewer than k (many deleted nodes, or a very selective filter).
            scope = self.in_graph[: self.size] if allowed is None else allowed
            return self._exact(np.flatnonzero(scope), query, k)[0]

    def search(self, query: np.ndarray, k: int, node: Node | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels for a prepared query vector, with exact scores, best first."""
        if self.live_count == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        size = self.size
        if self.pending_count <= self.tuning.exact_pending_limit:
            pending = self.pending[:size]
        else:  # a bulk load: answer from the graph until the indexer catches up
            pending = np.zeros(size, dtype=np.bool_)
        if node is None:
            found = [self._exact(np.flatnonzero(pending), query, k)[0]] if pending.any() else []
            if self.graph_count:
                found.append(self._graph_knn(query, min(k, self.graph_count)))
        else:
            mask = self.filter_mask(node)
            matched = int(np.count_nonzero(mask))
            if matched == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            if not self.graph_count:
                return self._exact(np.flatnonzero(mask & (pending | self.in_graph[:size])),
                                   query, k)
            if (
                matched <= self.tuning.exact_limit
                and matched <= _EXACT_PER_GRAPH_STEP * self._oversample(k, matched)
            ):
                return self._exact(np.flatnonzero(mask & (pending | self.in_graph[:size])),
                                   query, k)
            found = [self._exact(np.flatnonzero(mask & pending), query, k)[0]]
            in_graph = mask & self.in_graph[:size]
            graph_matched = int(np.count_nonzero(in_graph))
            if graph_matched:
                found.append(self._filtered_graph_search(query, k, in_graph, graph_matched))
        labels = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        return self._exact(labels, query, k)

    def _oversample(self, k: int, matched: int) -> int:
        """Graph neighbours to fetch so that about 3 k of them pass a filter matching
        ``matched`` records (assuming the filter is independent of the query); the margin
        keeps recall up, since the tail of a long approximate list is the least accurate."""
        share = max(matched, 1) / max(self.live_count, 1)
        return min(self.graph_count, math.ceil(k / share * 3) + 20)

    def _filtered_graph_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray, allowed_count: int
    ) -> np.ndarray:
        want = min(k, allowed_count)
        oversample = self._oversample(k, allowed_count)
        if oversample <= _MAX_OVERSAMPLE:
            labels = self._graph_knn(query, oversample)
            kept: np.ndarray = labels[allowed[labels]]
            if len(kept) >= want:
                return kept[:want]
        labels = self._graph_knn(query, want, allowed)
        if len(labels) >= want:
            return labels
        return self._exact(np.flatnonzero(allowed), query, k)[0]

    # -- snapshots -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything but the graph and the vectors, as a picklable dict."""
        return {
            "format": 1,
            "name": self.name,
            "dim": self.dim,
            "metric": self.metric,
            "ids": self.ids[: self.size],
            "free": list(self.free),
            "size": self.size,
            "in_graph": self.in_graph[: self.size].copy(),
            "pending": np.flatnonzero(self.pending[: self.size]),
            "label_seq": self.label_seq[: self.size].copy(),
            "columns": self.columns,
            "applied_seq": self.applied_seq,
        }

    @classmethod
    def restore(
        cls,
        state: Mapping[str, Any],
        vectors: io.BufferedIOBase,
        graph: hnswlib.Index | None,
        tuning: Tuning,
    ) -> NamespaceIndex:
        """Rebuild a namespace from :meth:`state`, its vector file and its graph."""
        ns = cls(state["name"], state["dim"], state["metric"], tuning)
        size = state["size"]
        ns.size = size
        ns._ensure(size)
        ns.ids[:size] = state["ids"]
        ns.id_to_label = {vid: label for label, vid in enumerate(state["ids"]) if vid is not None}
        ns.free = list(state["free"])
        ns.alive[:size] = [vid is not None for vid in state["ids"]]
        ns.live_count = len(ns.id_to_label)
        ns.in_graph[:size] = state["in_graph"]
        ns.label_seq[:size] = state["label_seq"]
        ns.graph_count = int(np.count_nonzero(ns.in_graph))
        for label in state["pending"]:
            ns._mark_pending(int(label))
        ns.columns = state["columns"]
        ns.columns.ensure(len(ns.alive))
        ns.vectors.load(vectors, size)
        ns.vectors.ensure(len(ns.alive))
        ns.graph = graph
        ns._update_ef()
        ns.applied_seq = ns.snapshot_seq = state["applied_seq"]
        return ns
