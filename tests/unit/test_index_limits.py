"""The index server's response caps: JSON built member by member stops at its limit, and a
fetch whose answer would pass 64 MB is refused after reading a bounded amount."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest

from refarch.index.server import limits
from refarch.index.server.api_errors import ApiError
from refarch.index.server.app import _fetch


def test_capped_json_is_exact_json_and_stops_at_its_limit() -> None:
    capped = limits.CappedJson(30)
    assert capped.add([1, 2], "a") and capped.add("x", "b")
    assert orjson.loads(capped.encode()) == {"a": [1, 2], "b": "x"}
    assert not capped.add("y" * 20, "c")  # would pass 30 bytes: nothing added
    assert orjson.loads(capped.encode()) == {"a": [1, 2], "b": "x"}
    assert len(capped.encode()) <= 30
    array = limits.CappedJson(10, array=True)
    assert array.add(1) and array.add(22) and not array.add(333_333)
    assert orjson.loads(array.encode()) == [1, 22]
    assert limits.CappedJson(2).encode() == b"{}"


def test_sizes_read_as_pinecone_writes_them() -> None:
    assert limits.human_size(2 * 1024 * 1024) == "2MB"
    assert limits.human_size(64 * 1024) == "64KB"
    assert limits.too_large(3 * 1024 * 1024, 2 * 1024 * 1024).message == (
        "Request size 3MB exceeds the maximum supported size of 2MB")
    assert limits.too_large(3 * 1024 * 1024, 1024, at_least=True).status == 413


@dataclass
class _Config:
    dimension: int


@dataclass
class _WideEngine:
    """Just what ``_fetch`` uses of an engine: every id holds a vector of ones."""

    config: _Config
    calls: list[int] = field(default_factory=list)

    def fetch(self, namespace: str, ids: list[str]) -> dict:
        self.calls.append(len(ids))
        return {vid: (np.ones(self.config.dimension, np.float32), {"n": 1.0}) for vid in ids}


def test_a_fetch_over_64_mb_is_refused_reading_a_few_mb_at_a_time() -> None:
    engine = _WideEngine(_Config(20_000))  # 1,000 x 20,000 values: ~80 MB of JSON
    with pytest.raises(ApiError) as caught:
        _fetch(engine, "", [f"id{i}" for i in range(1_000)])  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert "fetch result would be over the 64MB limit" in caught.value.message
    assert max(engine.calls) * 20_000 * 4 <= 4 * 1024 * 1024  # vectors read ~4 MB at a time
    assert sum(engine.calls) < 1_000  # it stopped at the cap

    small = _WideEngine(_Config(8))
    answer = orjson.loads(_fetch(small, "ns", ["a", "b"]))  # type: ignore[arg-type]
    assert answer == {"vectors": {vid: {"id": vid, "values": [1.0] * 8, "metadata": {"n": 1.0}}
                                  for vid in ("a", "b")},
                      "namespace": "ns", "usage": {"readUnits": 1}}
