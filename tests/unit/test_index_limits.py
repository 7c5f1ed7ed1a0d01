"""The index server's limits: bodies counted while they stream (413), large JSON parsed in a
thread, and response caps: JSON built member by member stops at its limit, and a
fetch whose answer would pass 64 MB is refused after reading a bounded amount."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest
from starlette.requests import Request

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
    answer = orjson.loads(_fetch(small, "ns", ["a", "b", "a"]))  # type: ignore[arg-type]
    assert answer == {"vectors": {vid: {"id": vid, "values": [1.0] * 8, "metadata": {"n": 1.0}}
                                  for vid in ("a", "b")},
                      "namespace": "ns", "usage": {"readUnits": 1}}
    chunk = limits.fetch_chunk(8)
    twice = ["a", *(f"x{i}" for i in range(chunk)), "a"]  # "a" in the first and second chunk
    assert _fetch(_WideEngine(_Config(8)), "", twice).count(b'"a":') == 1  # type: ignore[arg-type]


def _request(chunks: list[bytes], content_length: int | None = None) -> tuple[Request, list[int]]:
    """A Starlette request whose body arrives in ``chunks``; the list counts receive calls."""
    calls: list[int] = []
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]

    async def receive() -> dict:
        calls.append(1)
        i = len(calls) - 1
        return {"type": "http.request", "body": chunks[i] if i < len(chunks) else b"",
                "more_body": i < len(chunks) - 1}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers,
             "query_string": b""}
    return Request(scope, receive), calls


def test_read_body_counts_while_streaming_and_drains_the_rest() -> None:
    request, _ = _request([b"ab", b"cd"])
    assert asyncio.run(limits.read_body(request, 4)) == b"abcd"
    request, calls = _request([b"ab", b"cd", b"ef", b"gh"])
    with pytest.raises(ApiError) as caught:
        asyncio.run(limits.read_body(request, 4))
    assert caught.value.status == 413 and caught.value.code == "PAYLOAD_TOO_LARGE"
    assert len(calls) == 4  # read to the end (dropped), so the client gets the answer
    mb = 1024 * 1024
    request, calls = _request([b"x"], content_length=limits.MAX_DRAIN_BYTES + 1)
    with pytest.raises(ApiError) as caught:
        asyncio.run(limits.read_body(request, 2 * mb))
    assert caught.value.message == "Request size 32MB exceeds the maximum supported size of 2MB"
    assert not calls  # declared far too large: refused without reading


def test_large_json_bodies_are_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real = limits.rq.parse_json

    def recording(body: bytes) -> dict:
        threads.append(threading.current_thread().name)
        return real(body)

    monkeypatch.setattr(limits.rq, "parse_json", recording)
    small = orjson.dumps({"a": 1})
    large = orjson.dumps({"a": "x" * (limits.INLINE_PARSE_BYTES + 1)})
    loop_thread = threading.current_thread().name
    assert asyncio.run(limits.read_json(_request([small])[0], 1024))["a"] == 1
    assert threads == [loop_thread]
    assert len(asyncio.run(limits.read_json(_request([large])[0], 2 * len(large)))["a"]) > 1
    assert threads[1] != loop_thread
