"""The :class:`~refarch.index.port.VectorIndex` port behaves the same on every backend.

``local`` and ``pinecone`` are the Pinecone SDK adapter (:class:`PineconeVectorIndex`) on the
local server and on Pinecone's cloud (with credentials); ``memory`` is the in-memory
:class:`~refarch.fakes.FakeVectorIndex` the unit tests use, held to the same contract so it
cannot drift from the real thing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pytest

from refarch.errors import IndexRejectedError, IndexServiceError
from refarch.fakes import FakeVectorIndex
from refarch.index.port import REJECTION_STATUSES, PineconeVectorIndex, VectorIndex
from tests.contract.index.backends import BACKENDS, open_backend
from tests.contract.index.reference import (
    random_filter,
    random_metadata,
    reference_matches,
    true_scores,
)
from tests.support.waiting import eventually

T = TypeVar("T")

DIM = 64
PORT_BACKENDS = (*BACKENDS, "memory")


@dataclass
class PortBackend:
    """Opens ports (an index of a dimension and metric, bound to a namespace) on one backend."""

    name: str
    open_index: Callable[[int, str, str], VectorIndex]
    #: Seconds a write may take to become visible (0: at once, checked exactly once).
    patience: float
    closers: list[Callable[[], None]] = field(default_factory=list)

    def port(self, namespace: str, dimension: int = DIM, metric: str = "cosine") -> VectorIndex:
        """The port of a (shared, per module) index of ``dimension`` and ``metric``, bound to
        ``namespace``."""
        return self.open_index(dimension, metric, namespace)

    def eventually(self, check: Callable[[], T]) -> T:
        """Run ``check`` until it passes (once, where writes are visible at once)."""
        return eventually(check, self.patience, interval=1.0)


@pytest.fixture(scope="module", params=PORT_BACKENDS)
def ports(request: pytest.FixtureRequest) -> Iterator[PortBackend]:
    """Each backend in turn; its indexes are created on first use and dropped afterwards."""
    if request.param == "memory":
        fakes: dict[tuple[int, str], FakeVectorIndex] = {}

        def open_fake(dimension: int, metric: str, namespace: str) -> VectorIndex:
            index = fakes.setdefault((dimension, metric), FakeVectorIndex(dimension, metric))
            return index.in_namespace(namespace)

        yield PortBackend("memory", open_fake, 0.0)
        return
    backend = open_backend(request.param, request)
    created: dict[tuple[int, str], Any] = {}
    names: list[str] = []

    def open_sdk(dimension: int, metric: str, namespace: str) -> VectorIndex:
        if (dimension, metric) not in created:
            name = backend.create_index(dimension, metric)
            names.append(name)
            created[dimension, metric] = backend.client.Index(name)
        return PineconeVectorIndex(created[dimension, metric], namespace=namespace)

    yield PortBackend(backend.name, open_sdk, backend.patience)
    for name in names:
        backend.drop_index(name)


def test_adapter_round_trip(ports: PortBackend, ns: str) -> None:
    port = ports.port(ns)
    assert isinstance(port, VectorIndex)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2_500, DIM)).astype(np.float32)
    # ~3 KB of metadata each: 2,500 records need several requests by size, not only count.
    records = [(f"p{i:05d}", vectors[i], {"i": i, "pad": "z" * 3_000, "even": i % 2 == 0})
               for i in range(2_500)]
    assert port.upsert(records) == 2_500
    ports.eventually(lambda: _equal(port.count(), 2_500))
    stats = port.stats()
    assert stats.namespaces[ns] == 2_500 and stats.dimension == DIM and stats.metric == "cosine"
    fetched = port.fetch([f"p{i:05d}" for i in range(0, 2_500, 2)] + ["missing"])
    assert len(fetched) == 1_250
    values, metadata = fetched["p00010"]
    assert np.array_equal(np.float32(values), vectors[10])
    assert metadata["i"] == 10.0 and metadata["even"] is True
    matches = port.query(vectors[7], top_k=3, filter={"even": False}, include_values=True)
    assert matches[0].id == "p00007" and matches[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(m.metadata["even"] is False for m in matches)
    assert np.array_equal(np.float32(matches[0].values), vectors[7])
    assert list(port.list_ids(prefix="p0000")) == [f"p{i:05d}" for i in range(10)]
    assert sum(1 for _ in port.list_ids()) == 2_500
    port.delete([f"p{i:05d}" for i in range(1_200)])
    ports.eventually(lambda: _equal(port.count(), 1_300))
    assert port.fetch(["p00000", "p01200"]).keys() == {"p01200"}


def _equal(a: object, b: object) -> None:
    assert a == b


def test_adapter_errors_are_index_service_errors(ports: PortBackend, ns: str) -> None:
    port = ports.port(ns)
    with pytest.raises(IndexServiceError) as caught:
        port.upsert([("bad", [1.0, 2.0], None)])
    assert "dimension" in str(caught.value).lower()
    with pytest.raises(IndexServiceError):
        port.query([1.0] * DIM, filter={"x": {"$bogus": 1}})


def test_a_record_the_index_refuses_is_a_rejection(ports: PortBackend, ns: str) -> None:
    """The indexer tells a bad record (dead-letter it alone) from an outage (retry the batch)
    by the error's type, IndexRejectedError with the HTTP status: every backend raises it."""
    port = ports.port(ns)
    for bad in ({"name": "n" * 50_000}, {"nothing": None}):
        with pytest.raises(IndexRejectedError) as caught:
            port.upsert([("ok", [0.5] * DIM, None), ("bad", [0.5] * DIM, bad)])
        assert caught.value.status in REJECTION_STATUSES, caught.value
    with pytest.raises(IndexRejectedError) as caught:
        port.upsert([("zero", [0.0] * DIM, None)])
    assert caught.value.status in REJECTION_STATUSES
    # Refused everywhere, but the Pinecone SDK refuses a list of numbers itself, before any
    # request, with no status: the indexer would take it for an outage (it never writes one).
    with pytest.raises(IndexServiceError):
        port.upsert([("bad", [0.5] * DIM, {"tags": [1, 2]})])
    assert port.fetch(["ok", "bad", "zero"]) == {}  # a refused request writes nothing


def test_writes_overwrite_and_unknown_ids_are_ignored(ports: PortBackend, ns: str) -> None:
    port = ports.port(ns)
    other = ports.port(ns + "-other")
    port.upsert([("a", [1.0] + [0.0] * (DIM - 1), {"v": 1}), ("b", [0.0, 1.0] + [0.0] * (DIM - 2), None)])
    port.upsert([("a", [0.0, 0.0, 1.0] + [0.0] * (DIM - 3), {"v": 2, "tag": ["x", "y"]})])
    other.upsert([("a", [1.0] * DIM, {"v": 9})])
    ports.eventually(lambda: _equal((port.count(), other.count()), (2, 1)))
    values, metadata = port.fetch(["a"])["a"]
    assert values[:3] == [0.0, 0.0, 1.0] and metadata == {"v": 2.0, "tag": ["x", "y"]}
    assert port.fetch(["b"])["b"][1] == {}  # no metadata reads back as empty
    assert port.fetch([]) == {}
    port.delete(["nope", "b"])
    port.delete([])
    ports.eventually(lambda: _equal(sorted(port.list_ids()), ["a"]))
    assert other.fetch(["a"])["a"][1] == {"v": 9.0}  # namespaces are apart
    stats = port.stats()
    assert stats.namespaces[ns] == 1 and stats.namespaces[ns + "-other"] == 1


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_query_scores_order_and_filters_match_the_reference(
    ports: PortBackend, ns: str, metric: str
) -> None:
    """Fewer than 100 records: every backend searches them exactly, as the fake always does."""
    dim, n = 16, 90
    port = ports.port(ns, dim, metric)
    rng = np.random.default_rng(21)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    meta_rng = random.Random(8)
    metadata = [random_metadata(meta_rng) for _ in range(n)]
    ids = [f"r{i:03d}" for i in range(n)]
    port.upsert([(ids[i], vectors[i], metadata[i]) for i in range(n)])
    ports.eventually(lambda: _equal(port.count(), n))
    filter_rng = random.Random(4)
    for round_ in range(40):
        flt = random_filter(filter_rng) if round_ % 4 else None
        query = rng.standard_normal(dim).astype(np.float32)
        allowed = [i for i in range(n) if flt is None or reference_matches(flt, metadata[i])]
        scores = true_scores(metric, vectors, query)
        best = sorted(allowed, key=lambda i: scores[i] if metric == "euclidean" else -scores[i])[:7]
        got = port.query(query, top_k=7, filter=flt)
        assert [m.id for m in got] == [ids[i] for i in best], flt
        assert [m.score for m in got] == pytest.approx([scores[i] for i in best], rel=1e-4, abs=1e-4)
        for m in got:
            assert m.metadata == metadata[int(m.id[1:])] or (not m.metadata and not metadata[int(m.id[1:])])
