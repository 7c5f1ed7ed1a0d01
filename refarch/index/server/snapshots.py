"""Durable snapshots of a namespace's in-memory state, so a restart does not rebuild the graph.

A snapshot is a directory ``snap-<seq>-<time>`` holding the HNSW graph, the raw vectors and a pickle
of everything else (ids, labels, metadata columns, pending labels), plus ``meta.json``. It is
written under a temporary name, every file is fsynced, and only then is the directory renamed
into place, so a ``kill -9`` at any moment leaves either the old snapshot or the new one, never
half of one. ``seq`` is the last write the snapshot includes: on start the engine loads the
newest snapshot and replays the records written after it from SQLite (the source of truth).
A graph written by the previous engine (hnswlib 0.8.0) is upgraded in place when it is loaded
(:mod:`~refarch.index.server.graph_files`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import time
import uuid
from pathlib import Path

from refarch.index.server.ann import NamespaceIndex
from refarch.index.server.graph_files import load_graph
from refarch.index.server.tuning import Tuning
from refarch.logs import event

log = logging.getLogger(__name__)

_STATE = "state.pkl"
_VECTORS = "vectors.f32"
_GRAPH = "graph.hnsw"
_META = "meta.json"


def namespace_dir(root: Path, namespace: str) -> Path:
    """Where the snapshots of ``namespace`` live (names are hashed: any string is a namespace)."""
    return root / hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:32]


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _order(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split("-")[1:])


def _snapshots(folder: Path) -> list[Path]:
    """Complete snapshots, oldest first (by sequence number, then time written)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith("snap-") and (p / _META).exists()]
    return sorted(found, key=_order)


def save_snapshot(root: Path, ns: NamespaceIndex) -> Path:
    """Write a snapshot of ``ns`` (the caller holds its lock shared); returns its directory."""
    folder = namespace_dir(root, ns.name)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"snap-{ns.applied_seq:020d}-{time.time_ns()}"
    tmp = folder / f"tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        with open(tmp / _VECTORS, "wb") as stream:
            ns.vectors.save(stream, ns.size)
            stream.flush()
            os.fsync(stream.fileno())
        with open(tmp / _STATE, "wb") as stream:
            pickle.dump(ns.state(), stream, protocol=pickle.HIGHEST_PROTOCOL)
            stream.flush()
            os.fsync(stream.fileno())
        if ns.graph is not None:
            ns.graph.save_index(str(tmp / _GRAPH))
            _fsync_file(tmp / _GRAPH)
        meta = {
            "namespace": ns.name,
            "seq": ns.applied_seq,
            "vectors": ns.live_count,
            "labels": ns.size,
            "indexed": ns.graph_count,
        }
        (tmp / _META).write_text(json.dumps(meta), encoding="utf-8")
        _fsync_file(tmp / _META)
        fsync_dir(tmp)
        os.rename(tmp, final)
        fsync_dir(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _snapshots(folder)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_snapshot(root: Path, namespace: str, tuning: Tuning) -> NamespaceIndex | None:
    """The namespace as of its newest complete snapshot, or ``None`` when it has none.

    Leftovers of interrupted snapshots and graph upgrades (``tmp-*``) are removed. Raises
    :class:`~refarch.index.server.graph_files.GraphFileError` (naming how to rebuild) for a
    graph file no engine here can read.
    """
    folder = namespace_dir(root, namespace)
    if not folder.is_dir():
        return None
    for leftover in folder.glob("tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    snapshots = _snapshots(folder)
    if not snapshots:
        return None
    newest = snapshots[-1]
    with open(newest / _STATE, "rb") as stream:
        state = pickle.load(stream)
    graph = None
    if (newest / _GRAPH).exists():
        scratch = folder / f"tmp-{uuid.uuid4().hex}"
        try:
            graph, upgraded = load_graph(newest / _GRAPH, state["metric"], state["dim"], scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if upgraded:
            fsync_dir(newest)
            event(log, "graph_upgraded", namespace=namespace, snapshot=newest.name,
                  elements=graph.element_count, source="hnswlib 0.8.0")
    with open(newest / _VECTORS, "rb") as stream:
        return NamespaceIndex.restore(state, stream, graph, tuning)


def drop_snapshots(root: Path, namespace: str) -> None:
    """Delete every snapshot of ``namespace``."""
    shutil.rmtree(namespace_dir(root, namespace), ignore_errors=True)


def snapshot_namespaces(root: Path) -> list[str]:
    """Names of the namespaces that have a snapshot under ``root``."""
    names = []
    if root.is_dir():
        for folder in root.iterdir():
            snapshots = _snapshots(folder)
            if snapshots:
                meta = json.loads((snapshots[-1] / _META).read_text(encoding="utf-8"))
                names.append(meta["namespace"])
    return names
