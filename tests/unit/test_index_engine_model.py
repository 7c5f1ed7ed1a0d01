"""Model-based test of the index engine (issue 14): hypothesis drives random writes, background
work, graceful restarts and crashes, and after every step every read must equal a plain
in-memory reference (:mod:`tests.support.index_model`).

A crash is the engine abandoned as it is (no snapshot, no close: its files as ``kill -9``
leaves them) and a new engine opened on the same folder; a crash may also land between a
snapshot and the pruning of the tombstones it covers. Every write's sequence number must be
above every one handed out before, across restarts. Seeded and bounded (``derandomize``), so
``make test`` runs the same examples every time; the failures it found are plain tests in
``tests/unit/test_index_sequence.py``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from refarch.index.filters import parse_filter
from refarch.index.server.engine import IndexConfig, IndexEngine
from refarch.index.server.snapshots import save_snapshot
from refarch.index.server.tuning import Tuning
from tests.support.index_model import (
    DIM,
    IDS,
    UNKNOWN,
    IndexReference,
    Record,
    assert_agrees,
    delete_sets,
    id_sets,
    keys,
    metadata,
    named_namespaces,
    namespaces,
    seeds,
    vector_for,
)

TUNING = Tuning(exact_limit=3, snapshot_min_changes=1, snapshot_idle_seconds=0.0,
                index_threads=1)
PROBE = vector_for(1_000)


class EngineView:
    """The reads of :func:`assert_agrees`, straight from an engine."""

    def __init__(self, engine: IndexEngine) -> None:
        self.engine = engine
        self.metric = engine.config.metric

    def fetch(self, ns: str, ids: list[str]) -> dict[str, Record]:
        return dict(self.engine.fetch(ns, ids))

    def list_ids(self, ns: str) -> list[str]:
        return self.engine.store.list_ids(ns, "", None, 1_000)

    def query(self, ns: str, vector: np.ndarray, top_k: int) -> list[tuple[str, float]]:
        return [(m.id, m.score) for m in self.engine.query(ns, top_k, None, vector=vector)]

    def stats(self) -> dict[str, int]:
        return self.engine.stats(None)

    def namespaces(self) -> set[str]:
        return set(self.engine.namespace_names())


class EngineMachine(RuleBasedStateMachine):
    """One engine on a temporary folder against :class:`IndexReference`."""

    metric = "cosine"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="index-model-"))
        self.abandoned: list[IndexEngine] = []
        self.ref = IndexReference()
        self.last_seq = 0
        self.engine = self._open()

    def _open(self) -> IndexEngine:
        config = IndexConfig(name="model", dimension=DIM, metric=self.metric)
        return IndexEngine(self.folder, config, TUNING)

    def _took(self, seq: int, new: bool = True) -> None:
        """A write returned ``seq``: a new number above all before, or (``new=False``, a
        write that changed nothing) the last one."""
        if new:
            assert seq > self.last_seq, f"sequence {seq} reused (last was {self.last_seq})"
            self.last_seq = seq
        else:
            assert seq == self.last_seq

    # -- writes --------------------------------------------------------------------------------

    @rule(ns=namespaces, ids=id_sets, data=st.data())
    def upsert(self, ns: str, ids: list[str], data: st.DataObject) -> None:
        rows: dict[str, Record] = {}
        for vid in ids:
            rows[vid] = (vector_for(data.draw(seeds)), data.draw(metadata))
        metas = [md for _, md in rows.values()]
        seq = self.engine.upsert(ns, ids, np.stack([v for v, _ in rows.values()]), metas,
                                 [orjson.dumps(md).decode() if md else None for md in metas])
        self._took(seq)
        self.ref.upsert(ns, rows)

    @rule(ns=namespaces, ids=delete_sets)
    def delete(self, ns: str, ids: list[str]) -> None:
        self._took(self.engine.delete_ids(ns, ids))
        self.ref.delete(ns, ids)

    @rule(ns=namespaces, key=keys)
    def delete_by_filter(self, ns: str, key: float) -> None:
        victims = self.ref.matching(ns, "k", key)
        deleted, seq = self.engine.delete_by_filter(ns, parse_filter({"k": key}))
        assert deleted == len(victims)
        self._took(seq, new=bool(victims))
        self.ref.delete(ns, victims)

    @rule(ns=namespaces, vid=st.sampled_from((*IDS, UNKNOWN)),
          seed=st.one_of(st.none(), seeds), set_metadata=metadata)
    def update(self, ns: str, vid: str, seed: int | None,
               set_metadata: dict[str, Any] | None) -> None:
        values = None if seed is None else vector_for(seed)
        matched, seq = self.engine.update(ns, vid, values, set_metadata)
        stored = self.ref.update(ns, vid, values, set_metadata)
        assert matched == int(stored)
        self._took(seq, new=stored)

    @rule(ns=namespaces, key=keys, value=st.integers(0, 2))
    def update_by_filter(self, ns: str, key: float, value: int) -> None:
        matching = self.ref.matching(ns, "k", key)
        change = {"tag": float(value)}
        matched, seq = self.engine.update_by_filter(ns, parse_filter({"k": key}), change,
                                                    dry_run=False)
        assert matched == len(matching)
        self._took(seq, new=bool(matching))
        for vid in matching:
            self.ref.update(ns, vid, None, change)

    @rule(ns=namespaces)
    def delete_all(self, ns: str) -> None:
        self._took(self.engine.delete_all(ns))
        self.ref.delete_all(ns)

    @rule(ns=named_namespaces)
    def create_namespace(self, ns: str) -> None:
        self.engine.create_namespace(ns)
        self.ref.created.add(ns)

    @rule(ns=named_namespaces)
    def delete_namespace(self, ns: str) -> None:
        self._took(self.engine.delete_all(ns, forget=True))
        self.ref.delete_all(ns, forget=True)

    # -- background work, restarts and crashes -------------------------------------------------

    @rule(steps=st.integers(1, 3))
    def index_pending(self, steps: int) -> None:
        for _ in range(steps):
            self.engine.index_step()

    @rule(force=st.booleans())
    def snapshot(self, force: bool) -> None:
        self.engine.snapshot_step(force=force)

    @rule()
    def graceful_restart(self) -> None:
        self.engine.close(snapshot=True)
        self.engine = self._open()

    @rule()
    def crash(self) -> None:
        self.abandoned.append(self.engine)
        self.engine = self._open()

    @precondition(lambda self: bool(self.engine.namespaces))
    @rule(data=st.data())
    def crash_between_snapshot_and_prune(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.engine.namespaces)))
        save_snapshot(self.engine.snapshot_root, self.engine.namespaces[name])
        self.crash()

    @invariant()
    def reads_agree_with_the_reference(self) -> None:
        assert_agrees(self.ref, EngineView(self.engine), PROBE)

    def teardown(self) -> None:
        for engine in [*self.abandoned, self.engine]:
            engine.close(snapshot=False)
        shutil.rmtree(self.folder, ignore_errors=True)


class EuclideanEngineMachine(EngineMachine):
    """The same with the euclidean metric (unnormalised vectors, distances as scores)."""

    metric = "euclidean"


MODEL_SETTINGS = settings(derandomize=True, max_examples=150, stateful_step_count=40,
                          deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
TestEngineModel = EngineMachine.TestCase
TestEngineModel.settings = MODEL_SETTINGS
TestEuclideanEngineModel = EuclideanEngineMachine.TestCase
TestEuclideanEngineModel.settings = settings(MODEL_SETTINGS, max_examples=50)
