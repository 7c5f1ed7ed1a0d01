"""How the vector index adapter splits writes to respect Pinecone's request limits."""

from __future__ import annotations

import orjson
import pytest

from refarch.errors import IndexServiceError
from refarch.index.port import upsert_batches


def test_upsert_batches_respect_both_limits() -> None:
    small = [{"id": str(i), "values": [0.5] * 4} for i in range(2_345)]
    assert [len(b) for b in upsert_batches(small)] == [1_000, 1_000, 345]
    big = [{"id": str(i), "values": [0.5] * 4, "metadata": {"pad": "x" * 30_000}}
           for i in range(200)]
    batches = list(upsert_batches(big))
    assert len(batches) > 1 and sum(len(b) for b in batches) == 200
    assert all(len(orjson.dumps({"vectors": b})) < 2 * 1024 * 1024 for b in batches)
    with pytest.raises(IndexServiceError):
        list(upsert_batches([{"id": "huge", "values": [0.5], "metadata": {"p": "x" * 2_100_000}}]))
