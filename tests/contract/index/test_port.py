"""The :class:`~refarch.index.port.VectorIndex` adapter behaves the same on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from refarch.errors import IndexServiceError
from refarch.index.port import PineconeVectorIndex, VectorIndex
from tests.contract.index.conftest import Backend

DIM = 64


@pytest.fixture(scope="module")
def index64(backend: Backend):
    name = backend.create_index(DIM)
    yield backend.client.Index(name)
    backend.drop_index(name)


def test_adapter_round_trip(backend: Backend, index64, ns: str) -> None:
    port = PineconeVectorIndex(index64, namespace=ns)
    assert isinstance(port, VectorIndex)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2_500, DIM)).astype(np.float32)
    # ~3 KB of metadata each: 2,500 records need several requests by size, not only count.
    records = [(f"p{i:05d}", vectors[i], {"i": i, "pad": "z" * 3_000, "even": i % 2 == 0})
               for i in range(2_500)]
    assert port.upsert(records) == 2_500
    backend.eventually(lambda: _equal(port.count(), 2_500))
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
    backend.eventually(lambda: _equal(port.count(), 1_300))
    assert port.fetch(["p00000", "p01200"]).keys() == {"p01200"}


def _equal(a, b) -> None:
    assert a == b


def test_adapter_errors_are_index_service_errors(index64, ns: str) -> None:
    port = PineconeVectorIndex(index64, namespace=ns)
    with pytest.raises(IndexServiceError) as caught:
        port.upsert([("bad", [1.0, 2.0], None)])
    assert "dimension" in str(caught.value).lower()
    with pytest.raises(IndexServiceError):
        port.query([1.0] * DIM, filter={"x": {"$bogus": 1}})
