"""The HNSW graph on disk: load it, including a graph written by the engine refarch used before.

The graph is Chroma's fork of hnswlib (``chroma-hnswlib``, imported as ``hnswlib``), which ships
wheels. Until then refarch used hnswlib 0.8.0 itself, which compiles C++ at install time. The
two write the same file except for one block: the fork stores a float per element (the vector's
norm, read only by its ``cosine`` space, which refarch never uses: cosine vectors are normalised
before they reach the graph and searched in ``ip`` space) between the level-0 data and the link
lists. So a graph written by hnswlib 0.8.0 is upgraded by inserting that block, byte for byte
otherwise: :func:`load_graph` does it once, atomically, and the snapshot then holds the new
format (which hnswlib 0.8.0 cannot read back: going back means a rebuild). A file that is
neither format raises :class:`GraphFileError`, which names the file and how to rebuild.

Layout (both): a 96-byte header (six ``size_t``, ``int maxlevel``, ``uint32 entry point``, three
``size_t``, ``double mult``, ``size_t ef_construction``); ``count * size_data_per_element`` bytes
of level-0 data; [fork only: ``count`` float32]; then per element a ``uint32`` byte count and that
many bytes of upper-level links.
"""

from __future__ import annotations

import mmap
import os
import shutil
import struct
import uuid
from pathlib import Path
from typing import BinaryIO

import hnswlib

#: hnswlib space per Pinecone metric (cosine vectors are normalised before they reach it).
SPACES = {"cosine": "ip", "dotproduct": "ip", "euclidean": "l2"}

_HEADER = struct.Struct("<6Qi I 3Q d Q")
_LINKS_SIZE = struct.Struct("<I")
_COPY_CHUNK = 16 << 20


class GraphFileError(RuntimeError):
    """A graph file that neither the engine nor the upgrade from hnswlib 0.8.0 can read."""


def new_graph(metric: str, dim: int) -> hnswlib.Index:
    """An empty (uninitialised) graph object for a Pinecone metric."""
    return hnswlib.Index(space=SPACES[metric], dim=dim)


def _rebuild_hint(path: Path) -> str:
    return (
        f"{path}: the HNSW graph file is damaged or from an unknown engine. The index server "
        "rebuilds the namespace from its records (records.db) when it starts; to rebuild by "
        "hand, stop the server, delete the snapshot directory holding this file and start it "
        "again (or delete the whole data directory and run `refarch backfill`)"
    )


def old_format_layout(path: Path, dim: int) -> tuple[int, int] | None:
    """``(data_end, count)`` when ``path`` is a graph written by hnswlib 0.8.0 for vectors of
    ``dim`` floats (``data_end``: where its level-0 data stops), else ``None``."""
    size = path.stat().st_size
    if size < _HEADER.size:
        return None
    with open(path, "rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        (offset_level0, _max_elements, count, per_element, label_offset, offset_data,
         _max_level, _entry, _max_m, max_m0, _m, _mult, _ef) = _HEADER.unpack_from(data, 0)
        links_level0 = max_m0 * 4 + 4
        if (offset_level0 != 0 or offset_data != links_level0
                or label_offset != links_level0 + dim * 4 or per_element != label_offset + 8):
            return None
        data_end = _HEADER.size + count * per_element
        position = data_end
        unpack = _LINKS_SIZE.unpack_from
        for _ in range(count):
            if position + 4 > size:
                return None
            position += 4 + unpack(data, position)[0]
        return (data_end, count) if position == size else None


def upgrade_old_format(path: Path, scratch: Path, dim: int) -> bool:
    """Rewrite ``path`` (hnswlib 0.8.0's format) in the engine's format, atomically (written
    under ``scratch``, fsynced, renamed over ``path``; the caller fsyncs ``path``'s directory);
    ``False`` when it is not that format."""
    layout = old_format_layout(path, dim)
    if layout is None:
        return False
    data_end, count = layout
    scratch.mkdir(parents=True, exist_ok=True)
    upgraded = scratch / f"graph-{uuid.uuid4().hex}.hnsw"
    try:
        with open(path, "rb") as source, open(upgraded, "wb") as target:
            _copy(source, target, data_end)
            # The per-element norms: read only by the fork's 'cosine' space (never used here).
            target.write(struct.pack("<f", 1.0) * count)
            shutil.copyfileobj(source, target, _COPY_CHUNK)
            target.flush()
            os.fsync(target.fileno())
        os.replace(upgraded, path)
    finally:
        upgraded.unlink(missing_ok=True)
    return True


def _copy(source: BinaryIO, target: BinaryIO, length: int) -> None:
    """Copy exactly ``length`` bytes (the file was measured just before)."""
    remaining = length
    while remaining:
        chunk = source.read(min(remaining, _COPY_CHUNK))
        if not chunk:
            raise GraphFileError(f"{source.name}: shorter than its header says")
        target.write(chunk)
        remaining -= len(chunk)


def load_graph(path: Path, metric: str, dim: int, scratch: Path) -> tuple[hnswlib.Index, bool]:
    """The graph stored at ``path``, and whether it was first upgraded from hnswlib 0.8.0's
    format (``scratch``: a directory for the rewritten file; after an upgrade the caller fsyncs
    ``path``'s directory). Raises :class:`GraphFileError` naming how to rebuild when neither
    format fits; such a file is left as it was."""
    graph = new_graph(metric, dim)
    try:
        graph.load_index(str(path))
        return graph, False
    except RuntimeError as exc:
        if not upgrade_old_format(path, scratch, dim):
            raise GraphFileError(f"{_rebuild_hint(path)} ({exc})") from exc
    graph = new_graph(metric, dim)
    try:
        graph.load_index(str(path))
    except RuntimeError as exc:
        raise GraphFileError(f"{_rebuild_hint(path)} (after the upgrade from hnswlib 0.8.0: "
                             f"{exc})") from exc
    return graph, True
