"""Sequence numbers of the local index are never reused across restarts (issue 14).

The engine restores its counter when it opens ``records.db``. Taken from the highest ``seq``
among the stored rows alone, it went backwards whenever the newest writes left no row: a
delete whose tombstone a snapshot had pruned, or a delete of ids that were never stored (it
still advanced the namespace's applied sequence, which the snapshot saved). The next write then
reused a number the snapshot already covered, and after a crash the replay ("rows newer than
the snapshot") skipped it: the record was in ``fetch`` but missing from ``query`` and from the
count. Each test here failed before the fix (a persisted high-water mark in ``records.db``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refarch.index.server.engine import IndexConfig, IndexEngine
from refarch.index.server.tuning import Tuning

DIM = 4
TUNING = Tuning(snapshot_min_changes=1, index_threads=1)


def _open(folder: Path) -> IndexEngine:
    folder.mkdir(exist_ok=True)
    return IndexEngine(folder, IndexConfig(name="t", dimension=DIM, metric="cosine"), TUNING)


def _vec(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i % DIM][None, :] + np.float32(0.01 * i)


def _upsert(engine: IndexEngine, vid: str, i: int, ns: str = "") -> int:
    return engine.upsert(ns, [vid], _vec(i), [None], [None])


def _assert_searchable(engine: IndexEngine, ids: set[str], ns: str = "") -> None:
    assert engine.fetch(ns, sorted(ids)).keys() == ids
    assert engine.count(ns, None) == len(ids)
    assert {m.id for m in engine.query(ns, 100, None, vector=_vec(0)[0])} == ids


def test_a_pruned_tombstone_does_not_rewind_the_sequence(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    engine = _open(folder)
    _upsert(engine, "a", 0)
    _upsert(engine, "b", 1)
    deleted_at = engine.delete_ids("", ["b"])
    engine.close(snapshot=True)  # graceful: the snapshot covers the delete, its tombstone goes

    engine = _open(folder)
    seq = _upsert(engine, "c", 2)
    assert seq > deleted_at, "a sequence number was handed out twice"
    engine.close(snapshot=False)  # what kill -9 leaves

    engine = _open(folder)
    try:
        _assert_searchable(engine, {"a", "c"})
    finally:
        engine.close(snapshot=False)


def test_a_delete_of_unknown_ids_does_not_rewind_the_sequence(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    engine = _open(folder)
    _upsert(engine, "a", 0)
    deleted_at = engine.delete_ids("", ["never-written"])  # no row, but the namespace's seq moved
    engine.close(snapshot=True)

    engine = _open(folder)
    seq = _upsert(engine, "b", 1)
    assert seq > deleted_at, "a sequence number was handed out twice"
    engine.close(snapshot=False)

    engine = _open(folder)
    try:
        _assert_searchable(engine, {"a", "b"})
    finally:
        engine.close(snapshot=False)


def test_a_data_directory_without_the_high_water_mark_resumes_above_its_snapshots(
    tmp_path: Path,
) -> None:
    import sqlite3

    folder = tmp_path / "index"
    engine = _open(folder)
    _upsert(engine, "a", 0)
    deleted_at = engine.delete_ids("", ["never-written"])
    engine.close(snapshot=True)
    with sqlite3.connect(folder / "records.db") as conn:  # as written before the fix
        conn.execute("DROP TABLE sequence")

    engine = _open(folder)
    assert _upsert(engine, "b", 1) > deleted_at
    engine.close(snapshot=False)
    engine = _open(folder)
    try:
        _assert_searchable(engine, {"a", "b"})
    finally:
        engine.close(snapshot=False)


def test_a_delete_by_filter_matching_nothing_takes_no_sequence_number(tmp_path: Path) -> None:
    from refarch.index.filters import parse_filter

    engine = _open(tmp_path / "index")
    try:
        seq = _upsert(engine, "a", 0)
        assert engine.delete_by_filter("", parse_filter({"x": 1})) == (0, seq)
        assert _upsert(engine, "b", 1) == seq + 1
    finally:
        engine.close(snapshot=False)


def test_deleting_an_empty_namespace_twice_around_a_crash_reuses_no_number(
    tmp_path: Path,
) -> None:
    # Found by tests/unit/test_index_engine_model.py: a delete_all of a namespace without
    # records left no row, so after a crash the next write got the same number again.
    folder = tmp_path / "index"
    engine = _open(folder)
    first = engine.delete_all("")
    abandoned = engine  # a crash: no snapshot, no close
    engine = _open(folder)
    try:
        assert engine.delete_all("") > first
        assert _upsert(engine, "a", 0) > first + 1
    finally:
        engine.close(snapshot=False)
        abandoned.close(snapshot=False)


def test_an_overwrite_after_a_restart_survives_a_crash(tmp_path: Path) -> None:
    # Found by tests/unit/test_index_engine_model.py (reads only, no sequence check): the
    # overwrite reused the snapshot's number, so after the crash query scored the old vector
    # while fetch returned the new one.
    folder = tmp_path / "index"
    engine = _open(folder)
    _upsert(engine, "v0", 0)
    engine.delete_ids("", ["v1"])  # never written
    engine.close(snapshot=True)
    engine = _open(folder)
    _upsert(engine, "v0", 1)
    engine.close(snapshot=False)
    engine = _open(folder)
    try:
        assert np.array_equal(engine.fetch("", ["v0"])["v0"][0], _vec(1)[0])
        top = engine.query("", 1, None, vector=_vec(1)[0])
        assert top[0].id == "v0" and top[0].score == pytest.approx(1.0, abs=1e-6)
    finally:
        engine.close(snapshot=False)
