"""The index engine against a plain-dict model: random writes, indexing, snapshots, and
reopening with or without a final snapshot (the latter is what a crash leaves) never diverge."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import orjson
import pytest

from refarch.index.filters import parse_filter
from refarch.index.server.engine import IndexConfig, IndexEngine
from refarch.index.server.tuning import Tuning

DIM = 8
TUNING = Tuning(exact_limit=10_000, snapshot_min_changes=1, index_threads=1)


def _open(folder: Path, metric: str) -> IndexEngine:
    folder.mkdir(exist_ok=True)
    return IndexEngine(folder, IndexConfig(name="t", dimension=DIM, metric=metric), TUNING)


def _check(engine: IndexEngine, model: dict[str, dict[str, tuple[np.ndarray, dict]]],
           rng: np.random.Generator) -> None:
    for ns, records in model.items():
        assert engine.count(ns, None) == len(records)
        fetched = engine.fetch(ns, list(records) + ["never-written"])
        assert fetched.keys() == records.keys()
        for vid, (values, metadata) in records.items():
            assert np.array_equal(fetched[vid][0], values)
            assert (fetched[vid][1] or {}) == metadata
        if not records:
            continue
        # Every record carries "live": a filter matching all of them is searched exactly.
        query = rng.standard_normal(DIM).astype(np.float32)
        node = parse_filter({"live": True})
        matches = engine.query(ns, 5, node, vector=query)
        ids = list(records)
        matrix = np.stack([records[i][0] for i in ids])
        if engine.config.metric == "euclidean":
            scores = ((matrix - query) ** 2).sum(axis=1)
            best = np.argsort(scores, kind="stable")[:5]
        else:
            scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
            best = np.argsort(-scores, kind="stable")[:5]
        assert [m.score for m in matches] == pytest.approx(scores[best].tolist(), abs=1e-5)
        unfiltered = engine.query(ns, 5, None, vector=query)
        assert {m.id for m in unfiltered} <= set(records)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_random_operations_survive_snapshots_and_reopening(tmp_path: Path, metric: str) -> None:
    rng = random.Random(metric)
    nprng = np.random.default_rng(len(metric))
    model: dict[str, dict[str, tuple[np.ndarray, dict]]] = {"": {}, "other": {}}
    engine = _open(tmp_path / "index", metric)
    try:
        for step in range(300):
            ns = rng.choice(["", "other"])
            records = model[ns]
            roll = rng.random()
            if roll < 0.45:
                ids = [f"id{rng.randrange(300)}" for _ in range(rng.randrange(1, 20))]
                ids = list(dict.fromkeys(ids))
                values = nprng.standard_normal((len(ids), DIM)).astype(np.float32)
                metas = [{"live": True, "n": float(rng.randrange(5))} for _ in ids]
                engine.upsert(ns, ids, values, metas, [orjson.dumps(m).decode() for m in metas])
                for vid, vec, md in zip(ids, values, metas, strict=True):
                    records[vid] = (vec, md)
            elif roll < 0.6 and records:
                victims = rng.sample(list(records), min(len(records), rng.randrange(1, 8)))
                engine.delete_ids(ns, victims + ["never-written"])
                for vid in victims:
                    del records[vid]
            elif roll < 0.7 and records:
                vid = rng.choice(list(records))
                values = nprng.standard_normal(DIM).astype(np.float32)
                engine.update(ns, vid, values, {"n": 9.0})
                records[vid] = (values, {**records[vid][1], "n": 9.0})
            elif roll < 0.75:
                n = float(rng.randrange(5))
                engine.delete_by_filter(ns, parse_filter({"n": n}))
                for vid in [v for v, (_, md) in records.items() if md["n"] == n]:
                    del records[vid]
            elif roll < 0.77:
                engine.delete_all(ns)
                records.clear()
            elif roll < 0.85:
                while engine.index_step():
                    pass
            elif roll < 0.9:
                engine.snapshot_step(force=True)
            elif roll < 0.95:
                engine.close(snapshot=rng.random() < 0.5)  # without: what kill -9 leaves
                engine = _open(tmp_path / "index", metric)
            if step % 25 == 0:
                _check(engine, model, nprng)
        engine.close(snapshot=False)
        engine = _open(tmp_path / "index", metric)
        _check(engine, model, nprng)
    finally:
        engine.close(snapshot=False)


def test_a_damaged_snapshot_is_rebuilt_from_the_records(tmp_path: Path) -> None:
    engine = _open(tmp_path / "index", "cosine")
    values = np.random.default_rng(1).standard_normal((50, DIM)).astype(np.float32)
    ids = [f"v{i}" for i in range(50)]
    engine.upsert("", ids, values, [{"live": True}] * 50, ['{"live":true}'] * 50)
    while engine.index_step():
        pass
    engine.close(snapshot=True)
    for state in (tmp_path / "index" / "snapshots").glob("*/snap-*/state.pkl"):
        state.write_bytes(b"garbage")
    engine = _open(tmp_path / "index", "cosine")
    try:
        assert engine.count("", None) == 50
        top = engine.query("", 1, None, vector=values[3])
        assert top[0].id == "v3"
    finally:
        engine.close(snapshot=False)


def test_a_bulk_load_beyond_the_exact_limit_is_eventually_consistent(tmp_path: Path) -> None:
    from refarch.index.server.tuning import Tuning as T

    engine = IndexEngine(tmp_path, IndexConfig(name="t", dimension=DIM, metric="cosine"),
                         T(exact_pending_limit=20, index_threads=1))
    try:
        values = np.random.default_rng(2).standard_normal((30, DIM)).astype(np.float32)
        first = engine.upsert("", [f"a{i}" for i in range(10)], values[:10], [None] * 10,
                              [None] * 10)
        # Few pending vectors: searched exactly, visible at once.
        assert engine.query("", 1, None, vector=values[3])[0].id == "a3"
        assert engine.searchable_seq("") == first
        second = engine.upsert("", [f"b{i}" for i in range(20)], values[10:], [None] * 20,
                               [None] * 20)
        # 30 pending > 20: the graph (empty yet) answers alone; the LSN says how fresh.
        assert engine.query("", 1, None, vector=values[15]) == []
        assert engine.searchable_seq("") == first - 1
        assert engine.fetch("", ["b5"]).keys() == {"b5"}  # reads by id are never stale
        while engine.index_step():
            pass
        assert engine.query("", 1, None, vector=values[15])[0].id == "b5"
        assert engine.searchable_seq("") == second
    finally:
        engine.close(snapshot=False)


def test_the_search_list_widens_as_the_graph_grows_and_after_reopening(tmp_path: Path) -> None:
    tuning = Tuning(ef_search=16, ef_growth_from=100, index_threads=1, snapshot_min_changes=1)
    assert [tuning.ef_for(n) for n in (0, 100, 400, 900)] == [16, 16, 32, 48]
    config = IndexConfig(name="t", dimension=DIM, metric="cosine")
    engine = IndexEngine(tmp_path, config, tuning)
    values = np.random.default_rng(3).standard_normal((400, DIM)).astype(np.float32)
    try:
        engine.upsert("", [f"v{i}" for i in range(50)], values[:50], [None] * 50, [None] * 50)
        while engine.index_step():
            pass
        assert engine.namespaces[""].graph.ef == 16
        engine.upsert("", [f"v{i}" for i in range(50, 400)], values[50:], [None] * 350,
                      [None] * 350)
        while engine.index_step():
            pass
        assert engine.namespaces[""].graph.ef == 32  # 400 vectors: 16 * sqrt(400 / 100)
    finally:
        engine.close(snapshot=True)
    engine = IndexEngine(tmp_path, config, tuning)
    try:
        assert engine.namespaces[""].graph.ef == 32  # restored from the snapshot
        assert engine.query("", 1, None, vector=values[7])[0].id == "v7"
    finally:
        engine.close(snapshot=False)
