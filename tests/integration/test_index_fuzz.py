"""Fuzzing the local index server over real HTTP (issue 14).

Hypothesis draws requests from the API's request schemas: every route, with bodies that are
valid, nearly valid (one field of the wrong type, out of range, too long) or junk; filters deep
(hundreds of levels) and wide (over 1,000 conditions); odd ids, namespaces, metadata, tokens
and limits; missing keys and foreign Host headers; now and then a body over its size limit.
Every answer must be below 500 and, when it is an error, in Pinecone's error shape; the server
must keep answering; and a record it held before the fuzz must be intact after it.

Seeded (``derandomize``) and bounded: :data:`EXAMPLES` requests, well under a minute.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from refarch.index.filters import FIELD_OPERATORS
from refarch.index.process import IndexServerHandle, find_free_port, start_index_server
from refarch.settings import Settings

EXAMPLES = 2_100
DIM = 4
INDEX = "fuzz"
SENTINEL_NS = "sentinel"
SENTINEL = {"id": "keep-me", "values": [0.25, -0.5, 0.75, 1.0],
            "metadata": {"genre": "drama", "year": 2020.0, "tags": ["a", "b"]}}
HEADERS = {"Api-Key": "fuzz-key", "X-Pinecone-Api-Version": "2026-07"}
#: Index names the control-plane requests may create, configure and delete (never INDEX).
SCRATCH_INDEXES = ("fz-a", "fz-b")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServerHandle]:
    """A real server process holding INDEX, whose namespace SENTINEL_NS holds one record."""
    home: Path = tmp_path_factory.mktemp("index-fuzz")
    handle = start_index_server(Settings.from_env({"REFARCH_HOME": str(home)}),
                                data_dir=home / "data", port=find_free_port())
    try:
        created = httpx.post(f"{handle.url}/indexes", headers=HEADERS, json={
            "name": INDEX, "schema": {"fields": {"_values": {
                "type": "dense_vector", "dimension": DIM, "metric": "cosine"}}}})
        assert created.status_code == 201, created.text
        upserted = httpx.post(f"{handle.url}/data/{INDEX}/vectors/upsert", headers=HEADERS,
                              json={"vectors": [SENTINEL], "namespace": SENTINEL_NS})
        assert upserted.status_code == 200, upserted.text
        yield handle
    finally:
        assert handle.stop() == 0, handle.log_tail()


# -- values ------------------------------------------------------------------------------------


def _text(**kwargs: Any) -> st.SearchStrategy[str]:
    """Any text a client can send (no lone surrogates: they cannot be encoded as UTF-8)."""
    return st.text(st.characters(exclude_categories=("Cs",)), **kwargs)


def _encode(value: Any) -> bytes:
    """JSON as a client would send it; integers past 64 bits and nesting past orjson's 254
    levels go through the standard library."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | finite | _text(max_size=12)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _deep(levels: int, key: str = "$and") -> Any:
    node: Any = {"genre": "drama"}
    for _ in range(levels):
        node = {key: [node]}
    return node


def _deep_list(levels: int) -> Any:
    node: Any = "x"
    for _ in range(levels):
        node = [node]
    return node


def _not_sentinel(value: Any) -> bool:
    return not (isinstance(value, str) and value == SENTINEL_NS)


def mostly(valid: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """``valid`` nine times in ten, else ``hostile``: a request is checked field by field, so
    most fields must be right for the server to reach the wrong one."""
    return st.integers(0, 9).flatmap(lambda n: hostile if n == 0 else valid)


ids = mostly(
    st.sampled_from(["a", "b", "c", "d", "keep-me"]) | _text(min_size=1, max_size=8),
    st.sampled_from(["x" * 512, "x" * 513, "", "é", "a\x00b", " "]) | junk)
namespaces = mostly(
    st.sampled_from(["", "__default__", "fz-1", "fz-2"]),
    st.sampled_from(["n" * 512, "n" * 513, "é", "a\x00"]) | _text(max_size=10) | junk,
).filter(_not_sentinel)
vector = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=DIM, max_size=DIM)
values = mostly(vector, st.lists(finite, max_size=6) | st.lists(junk, max_size=5) | junk)
metadata_value = mostly(
    st.sampled_from(["drama", "comedy"]) | st.integers(1990, 2030) | st.booleans()
    | st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
    _text(max_size=10) | st.integers(-(2**70), 2**70) | finite | st.lists(junk, max_size=3)
    | junk)
metadata = mostly(
    st.dictionaries(st.sampled_from(["genre", "year", "tags", "flag"]), metadata_value,
                    max_size=4),
    st.dictionaries(_text(max_size=6), metadata_value, max_size=4)
    | st.builds(lambda n: {"pad": "p" * n}, st.integers(40_900, 41_000)) | junk)
operators = mostly(st.sampled_from(FIELD_OPERATORS),
                   st.sampled_from(["$and", "$or", "$not", "$regex", "genre"]))
operand = mostly(st.sampled_from(["drama", "comedy"]) | st.integers(1990, 2030)
                 | st.booleans() | st.lists(st.sampled_from(["drama", "a", 2020]), max_size=3),
                 scalars | st.lists(scalars, max_size=4) | junk)
field_condition = st.builds(
    lambda field, op, value: {field: {op: value}},
    mostly(st.sampled_from(["genre", "year", "tags", "flag", "missing"]),
           st.sampled_from(["$and", ""]) | _text(max_size=5)),
    operators, operand,
) | st.dictionaries(st.sampled_from(["genre", "year"]), scalars, min_size=1, max_size=2)
filters = mostly(
    st.recursive(field_condition, lambda inner: st.builds(
        lambda key, kids: {key: kids}, st.sampled_from(["$and", "$or"]),
        st.lists(inner, min_size=1, max_size=3)), max_leaves=8),
    st.builds(_deep, st.integers(10, 500), st.sampled_from(["$and", "$or"]))
    | st.builds(lambda n: {"$or": [{"year": {"$gte": i}} for i in range(n)]},
                st.integers(990, 1_200))
    | st.builds(lambda n: {"genre": {"$in": [f"g{i}" for i in range(n)]}},
                st.integers(9_999, 10_002))
    | st.builds(lambda n: {"genre": {"$eq": _deep_list(n)}}, st.integers(200, 1_000))
    | st.just({}) | junk,
)
top_k = mostly(st.integers(1, 20),
               st.integers(-3, 10_003) | st.sampled_from([10_000, 10_001, 2**64]) | junk)
token = mostly(st.none(), _text(max_size=20) | st.sampled_from(["eyJucyI6IiIsImFmdGVyIjoiYSJ9"])
               | junk)
limit = mostly(st.integers(1, 50), st.integers(-2, 10_002) | junk)
flag = mostly(st.booleans(), junk)


def _body(required: dict[str, st.SearchStrategy], optional: dict[str, st.SearchStrategy]
          ) -> st.SearchStrategy:
    return mostly(st.fixed_dictionaries(required, optional=optional), junk)


# -- requests: (method, path relative to the server, keyword arguments for httpx) ---------------

DATA = f"/data/{INDEX}"


def _post(path: str, body: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda b: ("POST", path, {"content": _encode(b)}), body)


def _get(path: str, params: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda p: ("GET", path, {"params": p}), params)


text_param = _text(max_size=12) | st.sampled_from(["0", "100", "101", "-1", "1e9", "x" * 600])
vector_item = mostly(
    st.fixed_dictionaries({"id": ids, "values": values}, optional={"metadata": metadata}),
    st.fixed_dictionaries({}, optional={"id": ids, "values": values, "metadata": metadata,
                                        "sparseValues": junk}) | junk)
create_body = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(SCRATCH_INDEXES) | _text(max_size=50) | junk,
    "schema": st.just({"fields": {"_values": {"type": "dense_vector", "dimension": DIM}}})
    | st.fixed_dictionaries({"fields": st.fixed_dictionaries({"_values": st.fixed_dictionaries(
        {}, optional={"type": st.just("dense_vector") | junk,
                      "dimension": st.integers(-1, 20_002) | junk,
                      "metric": st.sampled_from(["cosine", "euclidean", "x"]) | junk})})})
    | junk,
    "deployment": junk | st.fixed_dictionaries({}, optional={"cloud": junk, "region": junk}),
    "deletion_protection": st.sampled_from(["enabled", "disabled"]) | junk,
    "tags": junk,
})
oversized = st.one_of(
    st.just(("POST", f"{DATA}/vectors/upsert", {"content": b" " * (2 * 1024 * 1024 + 1)})),
    st.builds(lambda: ("POST", f"{DATA}/query",  # chunked: no Content-Length
                       {"content": iter([b"{", b" " * (5 * 1024 * 1024), b"}"])})),
    st.just(("POST", "/indexes", {"content": b'{"name": "' + b"n" * 70_000 + b'"}'})),
)

data_plane = st.one_of(
    _post(f"{DATA}/vectors/upsert", _body({"vectors": mostly(st.lists(vector_item, min_size=1, max_size=4), junk)},
                                          {"namespace": namespaces})),
    _post(f"{DATA}/query", _body({"topK": top_k, "vector": values}, {
        "filter": filters, "namespace": namespaces, "includeValues": flag,
        "includeMetadata": flag})),
    _post(f"{DATA}/query", _body({}, {
        "topK": top_k, "vector": values, "id": ids, "filter": filters, "namespace": namespaces,
        "includeValues": flag, "includeMetadata": flag, "sparseVector": junk})),
    _get(f"{DATA}/vectors/fetch", st.fixed_dictionaries({}, optional={
        "ids": st.lists(_text(max_size=8), max_size=4), "namespace": _text(max_size=8)})),
    _post(f"{DATA}/vectors/fetch_by_metadata", _body({"filter": filters}, { "namespace": namespaces, "limit": limit,
        "paginationToken": token})),
    _post(f"{DATA}/vectors/delete", _body({}, {
        "ids": st.lists(ids, max_size=4) | junk, "deleteAll": flag, "filter": filters,
        "namespace": namespaces})),
    _post(f"{DATA}/vectors/update", _body({}, {
        "id": ids, "values": values, "setMetadata": metadata, "filter": filters,
        "namespace": namespaces, "dryRun": flag, "sparseValues": junk})),
    _post(f"{DATA}/describe_index_stats", _body({"filter": filters}, {})),
    _get(f"{DATA}/vectors/list", st.fixed_dictionaries({}, optional={
        "namespace": _text(max_size=8).filter(_not_sentinel), "prefix": text_param,
        "limit": text_param, "paginationToken": text_param})),
    _get(f"{DATA}/namespaces", st.fixed_dictionaries({}, optional={
        "prefix": text_param, "limit": text_param, "paginationToken": text_param})),
    _post(f"{DATA}/namespaces", _body({}, {"name": namespaces})),
    st.builds(lambda name, method: (method, f"{DATA}/namespaces/{quote(name, safe='')}", {}),
              _text(min_size=1, max_size=10).filter(lambda n: n != SENTINEL_NS),
              st.sampled_from(["GET", "DELETE"])),
    st.builds(lambda path, method, body: (method, path, {"content": body}),
              st.sampled_from([f"{DATA}/query", f"{DATA}/vectors/upsert", f"{DATA}/vectors/update",
                               f"{DATA}/records/namespaces/x/search", "/data/nope/query",
                               f"{DATA}/bulk/imports", "/indexes/create-for-model"]),
              st.sampled_from(["POST", "GET", "PUT"]),
              st.binary(max_size=64) | st.builds(_encode, junk)),
)
control_plane = st.one_of(
    st.just(("GET", "/indexes", {})),
    _post("/indexes", create_body),
    st.builds(lambda name: ("GET", f"/indexes/{quote(name, safe='')}", {}),
              st.sampled_from([INDEX, *SCRATCH_INDEXES]) | _text(min_size=1, max_size=8)),
    st.builds(lambda name, body: ("PATCH", f"/indexes/{name}", {"content": _encode(body)}),
              st.sampled_from(SCRATCH_INDEXES), _body({}, {
                  "deletion_protection": st.sampled_from(["enabled", "disabled"]) | junk,
                  "tags": junk | st.dictionaries(_text(max_size=4), _text(max_size=4)),
                  "schema": junk})),
    st.builds(lambda name: ("DELETE", f"/indexes/{name}", {}), st.sampled_from(SCRATCH_INDEXES)),
    st.just(("GET", "/_refarch/status", {})),
)
headers = st.sampled_from([
    *[HEADERS] * 12,
    {"X-Pinecone-Api-Version": "2026-07"},
    {**HEADERS, "Host": "rebound.attacker.example"},
    {**HEADERS, "Content-Type": "text/plain"},
])
requests = st.tuples(
    st.integers(0, 199).flatmap(lambda n: oversized if n == 0 else (
        control_plane if n < 25 else data_plane)),
    headers,
)


def _assert_answer(response: httpx.Response, request: Any) -> None:
    assert response.status_code < 500, (request, response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] == response.status_code, (request, body)
        assert body["error"]["code"] and body["error"]["message"], (request, body)


def test_no_request_gets_a_5xx_and_the_data_stays_intact(server: IndexServerHandle) -> None:
    sent: list[int] = []
    succeeded: Counter[str] = Counter()  # route -> 2xx answers, to show what was exercised
    client = httpx.Client(base_url=server.url, timeout=60)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(requests)
    def fuzz(drawn: tuple[tuple[str, str, dict[str, Any]], dict[str, str]]) -> None:
        (method, path, kwargs), request_headers = drawn
        response = client.request(method, path, headers=request_headers, **kwargs)
        sent.append(response.status_code)
        if response.status_code < 300:
            succeeded[f"{method} {path.replace(DATA, '')}"] += 1
        _assert_answer(response, (method, path, str(kwargs)[:300], request_headers))

    started = time.monotonic()
    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(max(depth, 10_000))  # the client encodes filters 500 levels deep
    try:
        with client:
            fuzz()
    finally:
        sys.setrecursionlimit(depth)
    seconds = time.monotonic() - started
    statuses = {status: sent.count(status) for status in sorted(set(sent))}
    print(f"fuzz: {len(sent)} requests in {seconds:.1f} s, statuses {statuses}, "
          f"2xx by route {dict(succeeded.most_common())}")
    assert len(sent) >= 2_000
    assert all(status < 500 for status in sent)
    assert statuses.get(200, 0) > 100 and statuses.get(400, 0) > 500  # both kinds were tried
    assert statuses.get(413, 0) > 0
    for route in ("POST /vectors/upsert", "POST /query", "POST /vectors/fetch_by_metadata",
                  "POST /vectors/delete", "POST /vectors/update", "POST /describe_index_stats"):
        assert succeeded[route] > 0, (route, succeeded)  # valid requests reached the engine

    # The server still answers, logged no failure, and kept the record it held.
    assert server.running()
    assert httpx.get(f"{server.url}/_refarch/health").json()["status"] == "ok"
    assert "request_failed" not in server.log_path.read_text(errors="replace")
    data = httpx.Client(base_url=f"{server.url}{DATA}", headers=HEADERS)
    fetched = data.get("/vectors/fetch", params={"ids": [SENTINEL["id"]],
                                                 "namespace": SENTINEL_NS}).json()["vectors"]
    assert fetched[SENTINEL["id"]]["metadata"] == SENTINEL["metadata"]
    assert fetched[SENTINEL["id"]]["values"] == pytest.approx(SENTINEL["values"])
    stats = data.post("/describe_index_stats", json={}).json()
    assert stats["namespaces"][SENTINEL_NS] == {"vectorCount": 1}
    found = data.post("/query", json={"vector": SENTINEL["values"], "topK": 1,
                                      "namespace": SENTINEL_NS}).json()["matches"]
    assert found[0]["id"] == SENTINEL["id"] and found[0]["score"] == pytest.approx(1.0)
