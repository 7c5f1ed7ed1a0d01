"""Model-based test of the local index server process (issue 14): hypothesis drives writes
through the unmodified Pinecone SDK over real HTTP, snapshots, graceful restarts (SIGTERM) and
crashes (``kill -9`` of the server process), and after every step fetch, list, a query over
everything, stats and the namespace list must equal a plain in-memory reference
(:mod:`tests.support.index_model`). Every upsert's committed LSN must be above every sequence
number seen before (a query reports the last one), across restarts.

Fewer, shorter examples than the in-process engine test (``tests/unit/test_index_engine_model.py``),
since each restart starts a process; each example writes a new index on one long-lived data
directory, and at most :data:`RESTARTS` restarts happen per example. Seeded and bounded.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pinecone import Pinecone, ServerlessSpec
from pinecone.errors.exceptions import ConflictError, NotFoundError

from refarch.index.process import IndexServerHandle, find_free_port, start_index_server
from refarch.settings import Settings
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

#: Snapshots after every idle moment, so restarts find them (and tombstones get pruned).
SERVER_ARGS = ("--snapshot-idle-seconds", "0", "--snapshot-min-changes", "1",
               "--exact-limit", "3")
RESTARTS = 2
DEFAULT = "__default__"  # how the namespace API names ""
PROBE = vector_for(1_000)
API_KEY = "model-test-key"  # any key: the test server has none configured


class ServerSlot:
    """The one server process of the test, restarted in place (same data directory)."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings.from_env({"REFARCH_HOME": str(home)})
        self.data_dir = home / "data"
        self.handle = self._start()

    def _start(self) -> IndexServerHandle:
        return start_index_server(self.settings, data_dir=self.data_dir, port=find_free_port(),
                                  extra_args=SERVER_ARGS)

    def client(self) -> Pinecone:
        """An SDK client for the running server."""
        return Pinecone(api_key=API_KEY, host=self.handle.url)

    def restart(self, graceful: bool) -> None:
        """SIGTERM (snapshots, then exits 0) or ``kill -9``, then start again."""
        if graceful:
            assert self.handle.stop() == 0, self.handle.log_tail()
        else:
            self.handle.kill()
        self.handle = self._start()


class SdkView:
    """The reads of :func:`assert_agrees`, through the Pinecone SDK."""

    metric = "cosine"

    def __init__(self, index: Any) -> None:
        self.index = index

    def fetch(self, ns: str, ids: list[str]) -> dict[str, Record]:
        found = self.index.fetch(ids=ids, namespace=ns).vectors
        return {vid: (np.asarray(v.values, dtype=np.float32), v.metadata or None)
                for vid, v in found.items()}

    def list_ids(self, ns: str) -> list[str]:
        return [v.id for page in self.index.list(namespace=ns) for v in page.vectors]

    def query(self, ns: str, vector: np.ndarray, top_k: int) -> list[tuple[str, float]]:
        found = self.index.query(vector=vector.tolist(), top_k=top_k, namespace=ns)
        return [(m.id, m.score) for m in found.matches]

    def stats(self) -> dict[str, int]:
        summary = self.index.describe_index_stats().namespaces
        return {name: s.vector_count for name, s in summary.items() if s.vector_count}

    def namespaces(self) -> set[str]:
        names = {n.name for page in self.index.list_namespaces() for n in page.namespaces}
        return {"" if name == DEFAULT else name for name in names}


class ServerMachine(RuleBasedStateMachine):
    """A new index on the shared server against :class:`IndexReference`."""

    slot: ServerSlot  # set by the test below

    def __init__(self) -> None:
        super().__init__()
        self.name = f"model-{uuid.uuid4().hex[:10]}"
        self.slot.client().create_index(
            name=self.name, dimension=DIM, metric="cosine",
            spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        )
        self.ref = IndexReference()
        self.restarts = 0
        self.last_lsn = 0
        self.index = self.slot.client().Index(self.name)

    def _reconnect(self) -> None:
        self.index = self.slot.client().Index(self.name)

    # -- writes --------------------------------------------------------------------------------

    @rule(ns=namespaces, ids=id_sets, data=st.data())
    def upsert(self, ns: str, ids: list[str], data: st.DataObject) -> None:
        rows: dict[str, Record] = {vid: (vector_for(data.draw(seeds)), data.draw(metadata))
                                   for vid in ids}
        written = self.index.upsert(
            vectors=[(vid, values.tolist(), md) if md else (vid, values.tolist())
                     for vid, (values, md) in rows.items()],
            namespace=ns,
        )
        lsn = written.response_info.lsn_committed
        assert lsn is not None and lsn > self.last_lsn, f"LSN {lsn} after {self.last_lsn}"
        self.last_lsn = lsn
        self.ref.upsert(ns, rows)

    @rule(ns=namespaces, ids=delete_sets)
    def delete(self, ns: str, ids: list[str]) -> None:
        self.index.delete(ids=ids, namespace=ns)
        self.ref.delete(ns, ids)

    @rule(ns=namespaces, key=keys)
    def delete_by_filter(self, ns: str, key: float) -> None:
        self.index.delete(filter={"k": key}, namespace=ns)
        self.ref.delete(ns, self.ref.matching(ns, "k", key))

    @rule(ns=namespaces)
    def delete_all(self, ns: str) -> None:
        self.index.delete(delete_all=True, namespace=ns)
        self.ref.delete_all(ns)

    @rule(ns=namespaces, vid=st.sampled_from((*IDS, UNKNOWN)), seed=st.one_of(st.none(), seeds),
          set_metadata=metadata)
    def update(self, ns: str, vid: str, seed: int | None,
               set_metadata: dict[str, Any] | None) -> None:
        if seed is None and not set_metadata:
            return  # the server refuses an update that changes nothing
        values = None if seed is None else vector_for(seed)
        self.index.update(id=vid, values=None if values is None else values.tolist(),
                          set_metadata=set_metadata, namespace=ns)
        self.ref.update(ns, vid, values, set_metadata)

    @rule(ns=named_namespaces)
    def create_namespace(self, ns: str) -> None:
        if self.ref.exists(ns):
            with pytest.raises(ConflictError):
                self.index.create_namespace(name=ns)
            return
        self.index.create_namespace(name=ns)
        self.ref.created.add(ns)

    @rule(ns=named_namespaces)
    def delete_namespace(self, ns: str) -> None:
        if not self.ref.exists(ns):
            with pytest.raises(NotFoundError):
                self.index.delete_namespace(name=ns)
            return
        self.index.delete_namespace(name=ns)
        self.ref.delete_all(ns, forget=True)

    # -- snapshots, restarts and crashes -------------------------------------------------------

    @rule()
    def snapshot(self) -> None:
        httpx.post(f"{self.slot.handle.url}/_refarch/snapshot", headers={"Api-Key": API_KEY},
                   timeout=60).raise_for_status()

    @precondition(lambda self: self.restarts < RESTARTS)
    @rule(graceful=st.booleans())
    def restart(self, graceful: bool) -> None:
        self.restarts += 1
        self.slot.restart(graceful)
        self._reconnect()

    @invariant()
    def reads_agree_with_the_reference(self) -> None:
        assert_agrees(self.ref, SdkView(self.index), PROBE)

    @invariant()
    def the_last_sequence_number_never_goes_back(self) -> None:
        # A query reports the last sequence number handed out (deletes report none of their
        # own): after a restart it must not be below one seen before.
        lsn = _lsn(self.index)
        assert lsn >= self.last_lsn, f"the server's sequence went back from {self.last_lsn} to {lsn}"
        self.last_lsn = lsn

    def teardown(self) -> None:
        if self.slot.handle.running():
            self.slot.client().delete_index(self.name)


@pytest.mark.slow
def test_server_agrees_with_the_reference_across_restarts_and_kills(tmp_path: Path) -> None:
    slot = ServerSlot(tmp_path)
    ServerMachine.slot = slot
    try:
        run_state_machine_as_test(ServerMachine, settings=settings(
            derandomize=True, max_examples=12, stateful_step_count=25, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ))
    finally:
        assert slot.handle.stop() == 0, slot.handle.log_tail()


def _lsn(index: Any) -> int:
    """The last sequence number the server handed out (a query reports it)."""
    found = index.query(vector=PROBE.tolist(), top_k=1)
    return int(found.response_info.raw_headers["x-pinecone-request-lsn"])


def test_a_write_after_a_graceful_restart_survives_a_kill(tmp_path: Path) -> None:
    # The scenario of issue 14: the snapshot of the graceful stop pruned the tombstone, the
    # restarted server reused its sequence number for the next write, and after kill -9 that
    # write was in fetch but missing from query and the stats.
    slot = ServerSlot(tmp_path)
    try:
        slot.client().create_index(name="seq", dimension=DIM, metric="cosine",
                                   spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        index = slot.client().Index("seq")
        index.upsert(vectors=[("a", vector_for(0).tolist()), ("b", vector_for(1).tolist())])
        index.delete(ids=["b"])
        before = _lsn(index)
        slot.restart(graceful=True)
        index = slot.client().Index("seq")
        written = index.upsert(vectors=[("c", vector_for(2).tolist())])
        assert written.response_info.lsn_committed > before
        slot.restart(graceful=False)
        index = slot.client().Index("seq")
        assert set(index.fetch(ids=["a", "b", "c"]).vectors) == {"a", "c"}
        assert {m.id for m in index.query(vector=PROBE.tolist(), top_k=10).matches} == {"a", "c"}
        assert index.describe_index_stats().total_vector_count == 2
    finally:
        assert slot.handle.stop() == 0, slot.handle.log_tail()


def test_deleting_everything_in_an_empty_namespace_then_a_kill_keeps_the_sequence(
    tmp_path: Path,
) -> None:
    # Found by the state machine above: deleteAll of an empty namespace left no row, so after
    # kill -9 the server's last sequence number went back.
    slot = ServerSlot(tmp_path)
    try:
        slot.client().create_index(name="seq", dimension=DIM, metric="cosine",
                                   spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        index = slot.client().Index("seq")
        index.delete(delete_all=True, namespace="")
        before = _lsn(index)
        assert before >= 1
        slot.restart(graceful=False)
        assert _lsn(slot.client().Index("seq")) >= before
    finally:
        assert slot.handle.stop() == 0, slot.handle.log_tail()
