"""One Pinecone index on the local server: durable records, searchable namespaces, background work.

Write path (every write request): under the index's write lock, take the next sequence
number, commit the change to SQLite (fsynced: from here on it survives ``kill -9``), then apply
it to the namespace's in-memory state under that namespace's exclusive lock. The request is
acknowledged after both, so a client reads its own writes at once.

Read path: queries take the namespace's lock shared; records (values, metadata) are read from
SQLite, which never blocks on writers (WAL).

Background (driven by :class:`~refarch.index.server.registry.Registry`): pending vectors are
moved into the HNSW graph in short exclusive stretches, and namespaces are snapshotted when
they have been idle after enough changes (or at once after very many). Opening an index loads
each namespace's newest snapshot and replays the rows written after it.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from refarch.index.filters import Node
from refarch.index.server.ann import NamespaceIndex
from refarch.index.server.api_errors import bad_request, not_found
from refarch.index.server.records import RecordStore
from refarch.index.server.requests import MAX_METADATA_BYTES
from refarch.index.server.rwlock import RWLock
from refarch.index.server.snapshots import (
    drop_snapshots,
    load_snapshot,
    save_snapshot,
    snapshot_namespaces,
)
from refarch.index.server.tuning import Tuning
from refarch.logs import event

log = logging.getLogger("refarch.index.server")

_REPLAY_BATCH = 2_000


@dataclass
class IndexConfig:
    """What ``create_index`` fixed (plus what ``configure_index`` may change)."""

    name: str
    dimension: int
    metric: str
    cloud: str = "aws"
    region: str = "us-east-1"
    deletion_protection: str = "disabled"
    tags: dict[str, str] | None = None
    created_at: float = field(default_factory=time.time)

    def save(self, path: Path) -> None:
        """Write the config as JSON, atomically (temp file, fsync, rename)."""
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as stream:
            json.dump(asdict(self), stream)
            stream.flush()
            os.fsync(stream.fileno())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> IndexConfig:
        """Read a config written by :meth:`save`."""
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Match:
    """One query result."""

    id: str
    score: float
    values: np.ndarray | None = None
    metadata: dict[str, Any] | None = None


@dataclass
class _QueuedUpsert:
    """An upsert waiting for the group commit."""

    name: str
    ids: Sequence[str]
    vectors: np.ndarray
    metadatas: Sequence[dict[str, Any] | None]
    rows: list[tuple[str, bytes, str | None]]
    seq: int = 0
    done: bool = False
    error: BaseException | None = None


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def _meta(text: str | None) -> dict[str, Any] | None:
    return orjson.loads(text) if text else None


class IndexEngine:
    """Records, namespaces and locks of one index (see the module docstring)."""

    def __init__(self, folder: Path, config: IndexConfig, tuning: Tuning) -> None:
        self.folder = folder
        self.config = config
        self.tuning = tuning
        self.store = RecordStore(folder / "records.db")
        self.snapshot_root = folder / "snapshots"
        self.namespaces: dict[str, NamespaceIndex] = {}
        self.created: set[str] = set()
        self._locks: dict[str, RWLock] = {}
        self._locks_guard = threading.Lock()
        self._write_lock = threading.Lock()
        self._queue: list[_QueuedUpsert] = []
        self._queue_lock = threading.Lock()
        self._room = threading.Condition()
        self._index_chunk = 256
        self.closed = False
        # Held by each background step and by close(): an index deleted while the maintenance
        # thread works on it is closed only after that step, never under it (its SQLite
        # connection and graph must not go away mid-call).
        self._maintenance = threading.RLock()
        self._open()

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> None:
        started = time.monotonic()
        self.created = self.store.created_namespaces()
        names = self.store.namespaces() | set(snapshot_namespaces(self.snapshot_root))
        for name in sorted(names):
            ns = None
            try:
                ns = load_snapshot(self.snapshot_root, name, self.tuning)
            except Exception as exc:  # noqa: BLE001 - a damaged snapshot is rebuilt from SQLite
                event(log, "snapshot_unreadable", level=logging.WARNING, index=self.config.name,
                      namespace=name, error=str(exc))
            if ns is None:
                ns = self._new_namespace(name)
            replayed = self._replay(ns)
            if ns.live_count or name in self.created:
                self.namespaces[name] = ns
            else:
                drop_snapshots(self.snapshot_root, name)
            event(log, "namespace_opened", index=self.config.name, namespace=name,
                  vectors=ns.live_count, replayed=replayed, pending=ns.pending_count)
        # A data directory written before the high-water mark existed may hold a snapshot
        # newer than every stored row: never hand out a number a snapshot already covers.
        for ns in self.namespaces.values():
            self.store.last_seq = max(self.store.last_seq, ns.applied_seq)
        event(log, "index_opened", index=self.config.name, namespaces=len(self.namespaces),
              vectors=self.total(), seconds=time.monotonic() - started)

    def _new_namespace(self, name: str) -> NamespaceIndex:
        return NamespaceIndex(name, self.config.dimension, self.config.metric, self.tuning)

    def _replay(self, ns: NamespaceIndex) -> int:
        """Apply the rows written after ``ns``'s snapshot; returns how many."""
        count = 0
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        metas: list[dict[str, Any] | None] = []
        deleted: list[str] = []
        last_seq = ns.applied_seq

        def flush() -> None:
            if ids:
                ns.upsert(ids, ns.prepare(np.stack(vectors)), metas, last_seq)
            if deleted:
                ns.delete(deleted, last_seq)
            ids.clear()
            vectors.clear()
            metas.clear()
            deleted.clear()

        # Each (namespace, id) has one row holding its latest state, so order does not matter.
        for vid, seq, is_deleted, vec, meta in self.store.changes_since(ns.name, ns.applied_seq):
            last_seq = max(last_seq, seq)
            count += 1
            if is_deleted:
                deleted.append(vid)
            else:
                assert vec is not None  # a live row always carries its vector
                ids.append(vid)
                vectors.append(_vector(vec))
                metas.append(_meta(meta))
            if len(ids) + len(deleted) >= _REPLAY_BATCH:
                flush()
        flush()
        ns.applied_seq = last_seq
        return count

    def _rebuild(self, name: str) -> None:
        """Rebuild a namespace's memory from SQLite alone (after a failure while applying)."""
        event(log, "namespace_rebuilt", level=logging.ERROR, index=self.config.name,
              namespace=name)
        with self.lock(name).write():
            fresh = self._new_namespace(name)
            self._replay(fresh)
            self.namespaces[name] = fresh
            drop_snapshots(self.snapshot_root, name)

    def lock(self, name: str) -> RWLock:
        """The readers-writer lock of namespace ``name`` (one per name, forever)."""
        with self._locks_guard:
            found = self._locks.get(name)
            if found is None:
                found = self._locks[name] = RWLock()
            return found

    def searchable_seq(self, name: str) -> int:
        """Writes up to this sequence number are visible to queries of namespace ``name``."""
        ns = self.namespaces.get(name)
        return self.store.last_seq if ns is None else min(self.store.last_seq,
                                                          ns.searchable_seq())

    def total(self) -> int:
        """Vectors in every namespace."""
        return sum(ns.live_count for ns in list(self.namespaces.values()))

    # -- writes --------------------------------------------------------------------------------

    def _wait_for_room(self, name: str, incoming: int) -> None:
        """Hold a writer back while too many acknowledged vectors wait for the indexer."""
        ns = self.namespaces.get(name)
        if ns is None:
            return
        deadline = time.monotonic() + 60
        with self._room:
            while (
                ns.pending_count
                and ns.pending_count + incoming > self.tuning.pending_limit
                and time.monotonic() < deadline
                and not self.closed
            ):
                self._room.wait(0.5)

    def _namespace_for_write(self, name: str) -> NamespaceIndex:
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = self._new_namespace(name)
        return ns

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[dict[str, Any] | None],
        metadata_json: Sequence[str | None],
    ) -> int:
        """Insert or overwrite records; returns the write's sequence number.

        Concurrent upserts are committed together (group commit): whoever holds the write
        lock commits every upsert queued meanwhile in one transaction, so many writers share
        one fsync. Each still gets its own sequence number, in queue order.
        """
        self._wait_for_room(name, len(ids))
        rows = [(vid, vectors[i].tobytes(), metadata_json[i]) for i, vid in enumerate(ids)]
        write = _QueuedUpsert(name, ids, vectors, metadatas, rows)
        with self._queue_lock:
            self._queue.append(write)
        with self._write_lock:
            if not write.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_upserts(group)
        if write.error is not None:
            raise write.error
        return write.seq

    def _commit_upserts(self, group: list[_QueuedUpsert]) -> None:
        """Commit queued upserts in one transaction, then apply them (caller holds the lock)."""
        committed = False
        try:
            for write in group:
                write.seq = self.store.next_seq()
            self.store.upsert_many([(w.name, w.rows, w.seq) for w in group])
            committed = True
            for write in group:
                ns = self._namespace_for_write(write.name)
                with self.lock(write.name).write():
                    ns.upsert(write.ids, ns.prepare(write.vectors), write.metadatas, write.seq)
        except BaseException as exc:
            for write in group:
                write.error = exc
            if committed:  # durable but not applied: rebuild memory from the records
                for name in {w.name for w in group}:
                    self._rebuild(name)
            raise
        finally:
            for write in group:
                write.done = True

    def update(
        self,
        name: str,
        vector_id: str,
        values: np.ndarray | None,
        set_metadata: dict[str, Any] | None,
    ) -> tuple[int, int]:
        """Change one record's values and/or merge metadata; returns (matched, seq)."""
        with self._write_lock:
            ns = self.namespaces.get(name)
            current = self.store.fetch(name, [vector_id]).get(vector_id) if ns else None
            if ns is None or current is None:
                return 0, self.store.last_seq
            merged = None
            merged_json = None
            if set_metadata:
                merged = {**(_meta(current[1]) or {}), **set_metadata}
                merged_json = self._checked_json(merged, vector_id)
            seq = self.store.next_seq()
            blob = values.tobytes() if values is not None else None
            self.store.update(name, [(vector_id, blob, merged_json)], seq)
            with self.lock(name).write():
                if values is not None:
                    ns.upsert([vector_id], ns.prepare(values[None, :]), None, seq)
                if merged is not None:
                    ns.set_metadata([vector_id], [merged], seq)
            return 1, seq

    @staticmethod
    def _checked_json(metadata: dict[str, Any], vector_id: str) -> str:
        encoded = orjson.dumps(metadata)
        if len(encoded) > MAX_METADATA_BYTES:
            raise bad_request(
                f"Metadata size is {len(encoded)} bytes, which exceeds the limit of "
                f"{MAX_METADATA_BYTES} bytes per vector (record {vector_id!r} after the update)"
            )
        return encoded.decode()

    def _matching_ids(self, name: str, node: Node | None) -> list[str]:
        ns = self.namespaces.get(name)
        if ns is None:
            return []
        with self.lock(name).read():
            labels = np.flatnonzero(ns.filter_mask(node))
            return ns.ids_of(labels)

    def update_by_filter(
        self, name: str, node: Node, set_metadata: dict[str, Any], dry_run: bool
    ) -> tuple[int, int]:
        """Merge ``set_metadata`` into every record passing ``node``; returns (matched, seq)."""
        with self._write_lock:
            ids = self._matching_ids(name, node)
            if dry_run or not ids:
                return len(ids), self.store.last_seq
            current = self.store.fetch(name, ids)
            ids = [vid for vid in ids if vid in current]
            merged = [{**(_meta(current[vid][1]) or {}), **set_metadata} for vid in ids]
            encoded = [self._checked_json(md, vid) for md, vid in zip(merged, ids, strict=True)]
            seq = self.store.next_seq()
            self.store.update(name, [(vid, None, text) for vid, text in zip(ids, encoded, strict=True)], seq)
            ns = self.namespaces[name]
            with self.lock(name).write():
                ns.set_metadata(ids, merged, seq)
            return len(ids), seq

    def delete_ids(self, name: str, ids: Sequence[str]) -> int:
        """Delete records by id (unknown ids are fine); returns the write's sequence number."""
        with self._write_lock:
            seq = self.store.next_seq()
            self.store.delete(name, ids, seq)
            ns = self.namespaces.get(name)
            if ns is not None:
                with self.lock(name).write():
                    ns.delete(ids, seq)
                self._forget_if_empty(name)
            return seq

    def delete_by_filter(self, name: str, node: Node) -> tuple[int, int]:
        """Delete every record passing ``node``; returns (deleted, seq)."""
        with self._write_lock:
            ids = self._matching_ids(name, node)
            if not ids:  # nothing written: no new sequence number (it would not be persisted)
                return 0, self.store.last_seq
            seq = self.store.next_seq()
            self.store.delete(name, ids, seq)
            ns = self.namespaces[name]
            with self.lock(name).write():
                ns.delete(ids, seq)
            self._forget_if_empty(name)
            return len(ids), seq

    def delete_all(self, name: str, forget: bool = False) -> int:
        """Delete every record of a namespace (``forget``: the namespace itself too)."""
        with self._write_lock:
            seq = self.store.next_seq()
            self.store.drop_namespace(name, seq, forget=forget)
            if forget:
                self.created.discard(name)
            with self.lock(name).write():
                if name in self.namespaces:
                    fresh = self._new_namespace(name)
                    fresh.applied_seq = seq
                    self.namespaces[name] = fresh
                drop_snapshots(self.snapshot_root, name)
            self._forget_if_empty(name)
            return seq

    def _forget_if_empty(self, name: str) -> None:
        ns = self.namespaces.get(name)
        if ns is not None and ns.live_count == 0 and name not in self.created:
            del self.namespaces[name]

    def create_namespace(self, name: str) -> None:
        """Create an (empty) namespace explicitly."""
        with self._write_lock:
            self.store.create_namespace(name)
            self.created.add(name)
            self._namespace_for_write(name)

    # -- reads ---------------------------------------------------------------------------------

    def query(
        self,
        name: str,
        k: int,
        node: Node | None,
        vector: np.ndarray | None = None,
        vector_id: str | None = None,
        include_values: bool = False,
        include_metadata: bool = False,
    ) -> list[Match]:
        """The ``k`` nearest records (by vector or by a stored record's id), best first."""
        ns = self.namespaces.get(name)
        if ns is None:
            return []
        with self.lock(name).read():
            if vector_id is not None:
                query = ns.vector_of(vector_id)
                if query is None:
                    return []
            else:
                assert vector is not None
                query = ns.prepare(vector[None, :])[0]
            labels, scores = ns.search(query, k, node)
            ids = ns.ids_of(labels)
        if not (include_values or include_metadata):
            return [Match(vid, float(s)) for vid, s in zip(ids, scores, strict=True)]
        rows = self.store.fetch(name, ids)
        matches = []
        for vid, score in zip(ids, scores, strict=True):
            row = rows.get(vid)
            if row is None:  # deleted since the search
                continue
            matches.append(
                Match(
                    vid,
                    float(score),
                    _vector(row[0]) if include_values else None,
                    _meta(row[1]) if include_metadata else None,
                )
            )
        return matches

    def fetch(self, name: str, ids: Sequence[str]) -> dict[str, tuple[np.ndarray, dict | None]]:
        """Stored records among ``ids``: id -> (values, metadata)."""
        return {
            vid: (_vector(vec), _meta(meta)) for vid, (vec, meta) in self.store.fetch(name, ids).items()
        }

    def fetch_by_metadata(
        self, name: str, node: Node, limit: int, after: str | None
    ) -> tuple[dict[str, tuple[np.ndarray, dict | None]], str | None]:
        """Records passing ``node``, ``limit`` per page in id order; returns (page, last id)."""
        ids = sorted(self._matching_ids(name, node))
        if after is not None:
            ids = ids[bisect.bisect_right(ids, after):]
        page = ids[:limit]
        more = page[-1] if len(ids) > limit else None
        found = self.fetch(name, page)
        return {vid: found[vid] for vid in page if vid in found}, more

    def count(self, name: str, node: Node | None) -> int:
        """Records of a namespace passing ``node`` (all when ``None``)."""
        ns = self.namespaces.get(name)
        if ns is None:
            return 0
        if node is None:
            return ns.live_count
        with self.lock(name).read():
            return int(np.count_nonzero(ns.filter_mask(node)))

    def stats(self, node: Node | None) -> dict[str, int]:
        """Per namespace, how many records (passing ``node``) it holds; empty ones are left out."""
        counts = {name: self.count(name, node) for name in list(self.namespaces)}
        return {name: n for name, n in counts.items() if n}

    def namespace_names(self) -> list[str]:
        """Namespaces that exist: they hold records or were created explicitly."""
        return sorted(
            name for name, ns in list(self.namespaces.items())
            if ns.live_count or name in self.created
        )

    def require_namespace(self, name: str) -> NamespaceIndex:
        """The namespace, or a 404."""
        ns = self.namespaces.get(name)
        if ns is None or not (ns.live_count or name in self.created):
            shown = "__default__" if name == "" else name
            raise not_found(f"Namespace {shown!r} not found in index {self.config.name!r}")
        return ns

    # -- background work -----------------------------------------------------------------------

    def pending(self) -> int:
        """Vectors acknowledged but not yet in an HNSW graph."""
        return sum(ns.pending_count for ns in list(self.namespaces.values()))

    def index_step(self) -> bool:
        """Move one chunk of pending vectors of one namespace into its graph; True if it did."""
        with self._maintenance:
            return False if self.closed else self._index_step()

    def _index_step(self) -> bool:
        for name, ns in list(self.namespaces.items()):
            if not ns.pending_count:
                continue
            started = time.perf_counter()
            with self.lock(name).write():
                if self.namespaces.get(name) is not ns:
                    continue
                moved = ns.index_pending(self._index_chunk)
            elapsed = time.perf_counter() - started
            if moved:
                # Keep each exclusive stretch near 30 ms so queries are never held long.
                per_item = elapsed / moved
                self._index_chunk = int(min(2048, max(32, 0.03 / max(per_item, 1e-6))))
            with self._room:
                self._room.notify_all()
            return moved > 0
        return False

    def snapshot_step(self, force: bool = False) -> None:
        """Snapshot the namespaces that are due (all that changed when ``force``).

        Due: idle for ``snapshot_idle_seconds`` and fully indexed, after at least
        ``snapshot_min_changes`` writes or indexed vectors (so a restart finds the graph
        complete), or at once after ``snapshot_max_changes`` writes (bounding the replay after
        a crash).
        """
        with self._maintenance:
            if not self.closed or force:
                self._snapshot_due(force)

    def _snapshot_due(self, force: bool) -> None:
        now = time.monotonic()
        for name, ns in list(self.namespaces.items()):
            changes = ns.changes_since_snapshot + ns.indexed_since_snapshot
            if not changes:
                continue
            idle = now - ns.last_write >= self.tuning.snapshot_idle_seconds
            settled = idle and not ns.pending_count  # written and fully indexed
            due = force or ns.changes_since_snapshot >= self.tuning.snapshot_max_changes or (
                settled and changes >= self.tuning.snapshot_min_changes
            )
            if due:
                self.snapshot(name)

    def snapshot(self, name: str) -> None:
        """Write a durable snapshot of one namespace, then prune the tombstones it covers."""
        ns = self.namespaces.get(name)
        if ns is None:
            return
        started = time.monotonic()
        with self.lock(name).read():
            if self.namespaces.get(name) is not ns:
                return
            seq, changes = ns.applied_seq, ns.changes_since_snapshot
            indexed = ns.indexed_since_snapshot
            written = save_snapshot(self.snapshot_root, ns)
        with self._write_lock:
            self.store.prune_tombstones(name, seq)
        with self.lock(name).write():
            ns.snapshot_seq = seq
            ns.changes_since_snapshot = max(0, ns.changes_since_snapshot - changes)
            ns.indexed_since_snapshot = max(0, ns.indexed_since_snapshot - indexed)
        event(log, "snapshot_written", index=self.config.name, namespace=name,
              vectors=ns.live_count, pending=ns.pending_count, seq=seq, path=written.name,
              seconds=time.monotonic() - started)

    def close(self, snapshot: bool = True) -> None:
        """Snapshot what changed (unless told not to) and close the record store."""
        with self._maintenance:
            if self.closed:
                return
            self.closed = True
            with self._room:
                self._room.notify_all()
            if snapshot:
                self.snapshot_step(force=True)
            self.store.close()
