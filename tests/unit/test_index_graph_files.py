"""A data directory whose graph the previous engine (hnswlib 0.8.0) wrote still opens, from its
snapshot, with nothing rebuilt; a graph no engine reads gives one error naming how to rebuild.

``tests/unit/data/hnswlib-0.8.0-graph.hnsw`` is the graph that hnswlib 0.8.0 wrote for the
operations of :func:`write_index` (run under a venv with hnswlib 0.8.0 installed):

    python -m tests.unit.test_index_graph_files tests/unit/data/hnswlib-0.8.0-graph.hnsw

Each test replays the same operations with the current engine and swaps that file in for the
snapshot's own graph, which is exactly the directory an upgrade from the old engine finds.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from refarch.index.server.engine import IndexConfig, IndexEngine
from refarch.index.server.graph_files import GraphFileError, old_format_layout
from refarch.index.server.snapshots import load_snapshot, namespace_dir
from refarch.index.server.tuning import Tuning

FIXTURE = Path(__file__).parent / "data" / "hnswlib-0.8.0-graph.hnsw"
DIM = 16
COUNT = 200
DELETED = [f"v{i}" for i in range(0, COUNT, 10)]
OVERWRITTEN = [f"v{i}" for i in range(5, 105, 10)]
TUNING = Tuning(index_threads=1, snapshot_min_changes=1)


def _vectors() -> np.ndarray:
    # Integers over 8: exact in float32 and the same on every numpy, so the fixture's graph
    # holds these very vectors (normalised).
    rng = np.random.default_rng(20261203)
    return (rng.integers(-8, 9, size=(COUNT + len(OVERWRITTEN), DIM)) / 8).astype(np.float32) + 0.0625


def _open(folder: Path) -> IndexEngine:
    folder.mkdir(parents=True, exist_ok=True)
    return IndexEngine(folder, IndexConfig(name="t", dimension=DIM, metric="cosine"), TUNING)


def write_index(folder: Path) -> dict[str, np.ndarray]:
    """Upsert, index, delete and overwrite, then close with a snapshot; returns what is live."""
    values = _vectors()
    ids = [f"v{i}" for i in range(COUNT)]
    engine = _open(folder)
    engine.upsert("", ids, values[:COUNT], [{"n": i} for i in range(COUNT)],
                  [f'{{"n":{i}}}' for i in range(COUNT)])
    while engine.index_step():
        pass
    engine.delete_ids("", DELETED)
    engine.upsert("", OVERWRITTEN, values[COUNT:], [None] * len(OVERWRITTEN),
                  [None] * len(OVERWRITTEN))
    while engine.index_step():
        pass
    engine.close(snapshot=True)
    live = dict(zip(ids, values[:COUNT], strict=True))
    live.update(zip(OVERWRITTEN, values[COUNT:], strict=True))
    for vid in DELETED:
        live.pop(vid, None)
    return live


def _graph_file(folder: Path) -> Path:
    (graph,) = (namespace_dir(folder / "snapshots", "")).glob("snap-*/graph.hnsw")
    return graph


def _old_engine_directory(folder: Path) -> tuple[dict[str, np.ndarray], Path]:
    live = write_index(folder)
    graph = _graph_file(folder)
    assert old_format_layout(graph, DIM) is None  # the current engine wrote its own format
    shutil.copyfile(FIXTURE, graph)
    return live, graph


def test_the_fixture_is_the_old_engines_format() -> None:
    assert old_format_layout(FIXTURE, DIM) is not None
    assert old_format_layout(FIXTURE, DIM * 2) is None  # the layout is checked, not guessed


def test_a_snapshot_whose_graph_hnswlib_080_wrote_opens_without_a_rebuild(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, graph_file = _old_engine_directory(tmp_path / "index")
    with caplog.at_level(logging.INFO, logger="refarch"):
        engine = _open(tmp_path / "index")
    try:
        ns = engine.namespaces[""]
        # Loaded from the snapshot: the whole graph is there and nothing waits to be indexed.
        assert ns.pending_count == 0 and engine.pending() == 0
        assert ns.graph is not None and ns.graph_count == len(live) == engine.count("", None)
        assert "graph_upgraded" in caplog.text and "snapshot_unreadable" not in caplog.text
        # The old graph's vectors are these records' (label by label) and its deletes held.
        labels = np.asarray([ns.id_to_label[vid] for vid in live])
        stored = np.asarray(ns.graph.get_items(labels), dtype=np.float32)
        np.testing.assert_allclose(stored, ns.vectors.get(labels), atol=1e-6)
        found, _ = ns.graph.knn_query(ns.vectors.get(labels), k=1, num_threads=1)
        assert (found[:, 0] == labels).mean() > 0.95
        everything, _ = ns.graph.knn_query(ns.vectors.get(labels[:1]), k=len(live))
        assert set(everything[0].tolist()) == set(labels.tolist())  # no deleted label is back
        for vid in ("v3", "v15", "v199"):
            top = engine.query("", 3, None, vector=live[vid])
            assert top[0].id == vid and top[0].score == pytest.approx(1.0, abs=1e-5)
        assert engine.query("", 5, None, vector=_vectors()[0]) != []
        assert engine.fetch("", DELETED) == {}
    finally:
        engine.close(snapshot=False)
    # Upgraded in place, once: the snapshot now holds the current format and opens as it is.
    assert old_format_layout(graph_file, DIM) is None
    assert not list(namespace_dir(tmp_path / "index" / "snapshots", "").glob("tmp-*"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="refarch"):
        engine = _open(tmp_path / "index")
    try:
        assert engine.pending() == 0 and engine.count("", None) == len(live)
        assert "graph_upgraded" not in caplog.text
        assert engine.query("", 1, None, vector=live["v42"])[0].id == "v42"
    finally:
        engine.close(snapshot=False)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_graph_no_engine_reads_names_how_to_rebuild_and_is_left_as_it_was(
    tmp_path: Path, damage: str
) -> None:
    live, graph_file = _old_engine_directory(tmp_path / "index")
    data = FIXTURE.read_bytes()
    graph_file.write_bytes(data[:-3] if damage == "truncated" else b"\x07" * len(data))
    before = graph_file.read_bytes()
    with pytest.raises(GraphFileError) as raised:
        load_snapshot(tmp_path / "index" / "snapshots", "", TUNING)
    message = str(raised.value)
    assert str(graph_file) in message and "records.db" in message
    assert "refarch backfill" in message and "delete the snapshot directory" in message
    assert graph_file.read_bytes() == before  # nothing rewritten, nothing lost
    # The server itself rebuilds such a namespace from its records.
    engine = _open(tmp_path / "index")
    try:
        assert engine.count("", None) == len(live)
        while engine.index_step():
            pass
        assert engine.query("", 1, None, vector=live["v7"])[0].id == "v7"
    finally:
        engine.close(snapshot=False)


if __name__ == "__main__":  # write the fixture: run under hnswlib 0.8.0 (see the docstring)
    import hnswlib  # noqa: F401 - the engine in use is what writes the graph

    with tempfile.TemporaryDirectory() as scratch:
        write_index(Path(scratch) / "index")
        shutil.copyfile(_graph_file(Path(scratch) / "index"), sys.argv[1])
    print(f"wrote {sys.argv[1]}")
