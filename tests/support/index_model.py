"""A plain in-memory reference of one index's data plane, for the model-based (stateful) tests.

:class:`IndexReference` is what an index must hold after a sequence of writes: namespaces of
records (values, metadata) and the namespaces created explicitly. It knows nothing of
snapshots, sequence numbers or restarts, which is the point: whatever the engine does with
them, :func:`assert_agrees` must find every read (fetch, list, query over everything, stats,
the namespace list) equal to the reference. :class:`IndexView` is how a test reads an index
(the engine in-process, or the server through the Pinecone SDK).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pytest
from hypothesis import strategies as st

from tests.contract.index.reference import true_scores

DIM = 4
#: Ids the tests draw from; ``UNKNOWN`` is never written (deletes of it must change nothing).
IDS = ("v0", "v1", "v2", "v3", "v4", "v5")
UNKNOWN = "never-written"
NAMESPACES = ("", "ns-a", "ns-b")


def vector_for(seed: int) -> np.ndarray:
    """A deterministic, non-zero float32 vector for ``seed`` (a drawn integer)."""
    rng = np.random.default_rng(seed)
    vec = rng.standard_normal(DIM).astype(np.float32)
    vec[seed % DIM] += np.float32(3.0)  # never (near) zero: cosine needs a norm
    return vec

# The draws both model tests (engine in-process, server over HTTP) make.
namespaces = st.sampled_from(NAMESPACES)
named_namespaces = st.sampled_from(NAMESPACES[1:])  # "" cannot be created or named
id_sets = st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True)
delete_sets = st.lists(st.sampled_from((*IDS, UNKNOWN)), min_size=1, max_size=4, unique=True)
seeds = st.integers(0, 40)
metadata = st.one_of(st.none(), st.integers(0, 2).map(lambda k: {"k": float(k)}))
keys = st.integers(0, 2).map(float)


Record = tuple[np.ndarray, dict[str, Any] | None]


@dataclass
class IndexReference:
    """What the index holds: namespace -> id -> (values, metadata); created namespaces."""

    records: dict[str, dict[str, Record]] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)

    def namespace(self, ns: str) -> dict[str, Record]:
        """The records of ``ns`` (empty when it has none)."""
        return self.records.setdefault(ns, {})

    def exists(self, ns: str) -> bool:
        """A namespace exists while it holds records or was created explicitly."""
        return bool(self.records.get(ns)) or ns in self.created

    def upsert(self, ns: str, rows: dict[str, Record]) -> None:
        """Insert or overwrite whole records."""
        self.namespace(ns).update(rows)

    def update(self, ns: str, vid: str, values: np.ndarray | None,
               set_metadata: dict[str, Any] | None) -> bool:
        """Change one stored record's values and/or merge metadata; False if it is not stored."""
        current = self.records.get(ns, {}).get(vid)
        if current is None:
            return False
        old_values, old_meta = current
        meta = {**(old_meta or {}), **set_metadata} if set_metadata else old_meta
        self.records[ns][vid] = (old_values if values is None else values, meta)
        return True

    def matching(self, ns: str, key: str, value: Any) -> list[str]:
        """Ids of ``ns`` whose metadata has ``key == value`` (a ``{key: value}`` filter)."""
        return sorted(vid for vid, (_, md) in self.records.get(ns, {}).items()
                      if md is not None and md.get(key) == value)

    def delete(self, ns: str, ids: list[str]) -> None:
        """Delete ids (unknown ones are fine)."""
        for vid in ids:
            self.records.get(ns, {}).pop(vid, None)

    def delete_all(self, ns: str, forget: bool = False) -> None:
        """Delete every record of ``ns`` (``forget``: the namespace too)."""
        self.records.pop(ns, None)
        if forget:
            self.created.discard(ns)

    def stats(self) -> dict[str, int]:
        """Record count per namespace that holds any."""
        return {ns: len(rows) for ns, rows in self.records.items() if rows}

    def existing(self) -> set[str]:
        """Namespaces that exist."""
        return {ns for ns in set(self.records) | self.created if self.exists(ns)}


class IndexView(Protocol):
    """The reads :func:`assert_agrees` compares (an engine, or a server through the SDK)."""

    metric: str

    def fetch(self, ns: str, ids: list[str]) -> dict[str, Record]:
        """Stored records among ``ids``."""
        ...

    def list_ids(self, ns: str) -> list[str]:
        """Every id of ``ns``, in the order the index lists them."""
        ...

    def query(self, ns: str, vector: np.ndarray, top_k: int) -> list[tuple[str, float]]:
        """The ``top_k`` nearest records of ``ns``: (id, score), best first."""
        ...

    def stats(self) -> dict[str, int]:
        """Record count per non-empty namespace."""
        ...

    def namespaces(self) -> set[str]:
        """The namespaces that exist."""
        ...


def assert_agrees(ref: IndexReference, view: IndexView, probe: np.ndarray) -> None:
    """Every read of ``view`` equals the reference: fetch (values exact, metadata), list,
    a query whose ``top_k`` covers every record (ids and scores), stats, namespaces."""
    for ns in sorted(set(NAMESPACES) | set(ref.records)):
        expected = ref.records.get(ns, {})
        fetched = view.fetch(ns, [*IDS, UNKNOWN])
        assert fetched.keys() == expected.keys(), f"fetch of namespace {ns!r}"
        for vid, (values, metadata) in expected.items():
            got_values, got_meta = fetched[vid]
            assert np.array_equal(np.asarray(got_values, dtype=np.float32), values), (ns, vid)
            assert (got_meta or None) == (metadata or None), (ns, vid)
        assert view.list_ids(ns) == sorted(expected), f"list of namespace {ns!r}"
        matches = view.query(ns, probe, top_k=len(IDS) + 5)
        assert sorted(vid for vid, _ in matches) == sorted(expected), f"query of {ns!r}"
        if expected:
            ids = sorted(expected)
            scores = true_scores(view.metric, np.stack([expected[i][0] for i in ids]), probe)
            want = dict(zip(ids, scores.tolist(), strict=True))
            for vid, score in matches:
                assert score == pytest.approx(want[vid], rel=1e-4, abs=1e-4), (ns, vid)
            got = [score for _, score in matches]
            best_first = sorted(got, reverse=view.metric != "euclidean")
            assert got == pytest.approx(best_first, rel=1e-4, abs=1e-4), f"order of {ns!r}"
    assert view.stats() == ref.stats(), "stats"
    assert view.namespaces() == ref.existing(), "namespaces"

