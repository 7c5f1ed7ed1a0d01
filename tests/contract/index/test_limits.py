"""Hostile input gets a 4xx in Pinecone's error shape, never a 500, and costs bounded work:
filter depth and size, request bodies (413 while they stream in), response sizes, and each limit
Pinecone documents for ids, namespaces and metadata. Raw HTTP to the local server (the SDK
refuses to send much of this), plus what the SDK raises for the rest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from pinecone.errors.exceptions import ApiError, PayloadTooLargeError

from tests.contract.index.backends import Backend
from tests.support.index_http import assert_api_error

ONE = [1.0] + [0.0] * 7
MIB = 1024 * 1024


def _nested(levels: int) -> bytes:
    """A filter ``levels`` levels deep, as JSON (json.dumps itself recurses too deep for it)."""
    keys = [("$and", "$or")[i % 2] for i in range(levels - 1)]
    return (b"".join(b'{"%s":[' % k.encode() for k in keys) + b'{"genre":{"$eq":"drama"}}'
            + b"]}" * len(keys))


def _with_filter(body: dict, flt: bytes) -> bytes:
    """``body`` as JSON with a ``filter`` member given as JSON."""
    head = orjson.dumps(body)[:-1] + (b"," if body else b"")
    return head + b'"filter":' + flt + b"}"


@pytest.fixture
def kept(raw: httpx.Client, ns: str) -> Iterator[str]:
    """``ns`` holds one record, ``keep``; afterwards it is checked unchanged."""
    response = raw.post("/vectors/upsert", json={
        "vectors": [{"id": "keep", "values": ONE, "metadata": {"genre": "drama"}}],
        "namespace": ns})
    assert response.status_code == 200, response.text
    yield ns
    fetched = raw.get("/vectors/fetch", params={"ids": ["keep"], "namespace": ns}).json()
    assert fetched["vectors"]["keep"]["metadata"] == {"genre": "drama"}
    stats = raw.post("/describe_index_stats", json={}).json()
    assert stats["namespaces"][ns]["vectorCount"] == 1


def _filter_routes(ns: str, flt: Any) -> dict[str, bytes]:
    """A request body with filter ``flt`` for each route that takes a filter."""
    encoded = flt if isinstance(flt, bytes) else orjson.dumps(flt)
    bodies: dict[str, dict] = {
        "/query": {"topK": 3, "vector": ONE, "namespace": ns},
        "/vectors/delete": {"namespace": ns},
        "/describe_index_stats": {},
        "/vectors/fetch_by_metadata": {"namespace": ns},
        "/vectors/update": {"namespace": ns, "setMetadata": {"genre": "x"}},
    }
    return {path: _with_filter(body, encoded) for path, body in bodies.items()}


# 505 levels (JSON 1,013 deep, within orjson's 1,024) gave a RecursionError: HTTP 500.
@pytest.mark.parametrize("levels", [17, 505])
def test_deep_filters_get_400_on_every_route(raw: httpx.Client, kept: str, levels: int) -> None:
    for path, body in _filter_routes(kept, _nested(levels)).items():
        assert_api_error(raw.post(path, content=body), 400, "more than 16 levels deep")


def test_a_filter_16_levels_deep_is_accepted(raw: httpx.Client, kept: str) -> None:
    response = raw.post("/query", content=_with_filter(
        {"topK": 3, "vector": ONE, "namespace": kept}, _nested(16)))
    assert response.status_code == 200, response.text
    assert [m["id"] for m in response.json()["matches"]] == ["keep"]


def test_filters_of_more_than_1000_conditions_get_400(raw: httpx.Client, kept: str) -> None:
    wide = {"$or": [{"genre": f"g{i}"} for i in range(1_001)]}
    for path, body in _filter_routes(kept, wide).items():
        assert_api_error(raw.post(path, content=body), 400, "more than 1,000 conditions")
    at_limit = {"$or": [{"genre": f"g{i}"} for i in range(999)] + [{"genre": "drama"}]}
    response = raw.post("/describe_index_stats", json={"filter": at_limit})
    assert response.json()["namespaces"][kept]["vectorCount"] == 1


def test_the_sdk_raises_its_api_error_for_a_deep_filter(seeded_sdk: Any, kept: str) -> None:
    with pytest.raises(ApiError) as caught:
        seeded_sdk.query(vector=ONE, top_k=3, namespace=kept,
                         filter=orjson.loads(_nested(40)))
    assert caught.value.status_code == 400
    assert "more than 16 levels deep" in caught.value.message


@pytest.fixture
def seeded_sdk(backend: Backend, index8: Any) -> Any:
    if backend.server is None:
        pytest.skip("the nesting limit is the local server's")
    return index8


# -- request bodies ----------------------------------------------------------------------------


def _padded(payload: dict, size: int) -> bytes:
    """``payload`` as JSON, padded with whitespace to exactly ``size`` bytes."""
    encoded = orjson.dumps(payload)
    return encoded + b" " * (size - len(encoded))


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_upsert_bodies_over_2_mb_get_413_while_streaming(raw: httpx.Client, kept: str) -> None:
    upsert = {"vectors": [{"id": "big", "values": ONE}], "namespace": kept}
    at_limit = raw.post("/vectors/upsert", content=_padded(upsert, 2 * MIB))
    assert at_limit.status_code == 200, at_limit.text
    over = _padded(upsert, 2 * MIB + 1)
    assert_api_error(raw.post("/vectors/upsert", content=over), 413,
                     "exceeds the maximum supported size of 2MB")
    # No Content-Length (chunked): the server counts while it reads, and stops keeping bytes.
    chunked = raw.post("/vectors/upsert", content=_chunks(_padded(upsert, 3 * MIB)))
    assert "content-length" not in chunked.request.headers
    assert_api_error(chunked, 413, "Request size 3MB exceeds the maximum supported size of 2MB")
    raw.post("/vectors/delete", json={"ids": ["big"], "namespace": kept})


def test_the_sdk_raises_payload_too_large_for_an_upsert_over_2_mb(seeded_sdk: Any,
                                                                  kept: str) -> None:
    vectors = [(f"v{i}", ONE, {"pad": "y" * 30_000}) for i in range(80)]  # ~2.4 MB
    with pytest.raises(PayloadTooLargeError):
        seeded_sdk.upsert(vectors=vectors, namespace=kept)
    assert seeded_sdk.fetch(ids=["v0"], namespace=kept).vectors == {}


def test_other_routes_have_body_limits(backend: Backend, raw: httpx.Client, kept: str) -> None:
    query = {"topK": 1, "vector": ONE, "namespace": kept}
    assert raw.post("/query", content=_padded(query, 4 * MIB)).status_code == 200
    assert_api_error(raw.post("/query", content=_padded(query, 4 * MIB + 1)), 413,
                     "maximum supported size of 4MB")
    assert_api_error(raw.post("/vectors/delete", content=_chunks(b" " * (5 * MIB))), 413,
                     "maximum supported size of 4MB")
    assert backend.server is not None
    control = httpx.post(f"{backend.server.url}/indexes", headers={"Api-Key": "k"},
                         content=_padded({"name": "too-big"}, 64 * 1024 + 1))
    assert_api_error(control, 413, "maximum supported size of 64KB")
    assert_api_error(raw.post("/namespaces", content=_padded({"name": "x"}, 100_000)), 413,
                     "64KB")


# -- ids, namespaces, metadata, pagination (Pinecone's documented limits) ------------------------


def _upsert_one(raw: httpx.Client, ns: Any, vid: Any = "a", metadata: Any = None) -> httpx.Response:
    item: dict[str, Any] = {"id": vid, "values": ONE}
    if metadata is not None:
        item["metadata"] = metadata
    return raw.post("/vectors/upsert", json={"vectors": [item], "namespace": ns})


def test_record_ids_are_1_to_512_ascii_characters_without_nul(raw: httpx.Client, ns: str) -> None:
    longest = "i" * 512
    assert _upsert_one(raw, ns, longest).status_code == 200
    assert longest in raw.get("/vectors/fetch", params={"ids": [longest], "namespace": ns}
                              ).json()["vectors"]
    assert _upsert_one(raw, ns, "~!@#$%^&*()[]{}<>?/\\|'\" ").status_code == 200  # any ASCII
    for bad, fragment in [("i" * 513, "maximum is 512"), ("", "must not be empty"),
                          ("a\x00b", "no NUL"), ("café", "ASCII"), (7, "must be a string"),
                          (["a"], "must be a string")]:
        assert_api_error(_upsert_one(raw, ns, bad), 400, fragment)
        assert_api_error(raw.post("/vectors/delete", json={"ids": [bad], "namespace": ns}), 400,
                         fragment)


def test_namespaces_are_up_to_512_ascii_characters_without_nul(raw: httpx.Client) -> None:
    longest = "n" * 512
    assert _upsert_one(raw, longest).status_code == 200
    stats = raw.post("/describe_index_stats", json={}).json()
    assert stats["namespaces"][longest]["vectorCount"] == 1
    raw.post("/vectors/delete", json={"deleteAll": True, "namespace": longest})
    for bad, fragment in [("n" * 513, "maximum is 512"), ("a\x00b", "no NUL"),
                          ("naïve", "ASCII"), (5, "must be a string"), ({}, "must be a string")]:
        assert_api_error(_upsert_one(raw, bad), 400, fragment)
        assert_api_error(raw.post("/query", json={"topK": 1, "vector": ONE, "namespace": bad}),
                         400, fragment)


def test_metadata_is_at_most_40960_bytes_of_flat_json(raw: httpx.Client, ns: str) -> None:
    overhead = len(orjson.dumps({"text": ""}))
    exact = {"text": "x" * (40_960 - overhead)}
    assert len(orjson.dumps(exact)) == 40_960
    assert _upsert_one(raw, ns, "exact", exact).status_code == 200
    over = {"text": "x" * (40_961 - overhead)}
    assert_api_error(_upsert_one(raw, ns, "over", over), 400, "exceeds the limit of 40960 bytes")
    for bad, fragment in [({"$price": 5}, "do not start with '$'"),
                          ({"m": {"x": 1}}, "for field 'm'"),
                          ({"m": [1, 2]}, "list of strings"),
                          ({"m": None}, "Null values are not supported"),
                          ("flat", "must be an object"),
                          ({"m": [[[[[[[["deep"]]]]]]]]}, "for field 'm'")]:
        assert_api_error(_upsert_one(raw, ns, "bad", bad), 400, fragment)
    fetched = raw.get("/vectors/fetch", params={"ids": ["exact", "over", "bad"],
                                                "namespace": ns}).json()["vectors"]
    assert list(fetched) == ["exact"]


def test_pagination_tokens_and_limits_are_checked(raw: httpx.Client, kept: str) -> None:
    by_metadata = {"namespace": kept, "filter": {"genre": "drama"}}
    for token in (5, ["a"], {"ns": kept}, True, "not-a-token", "x" * 5_000):
        assert_api_error(raw.post("/vectors/fetch_by_metadata",
                                  json={**by_metadata, "paginationToken": token}),
                         400, "agination")
    assert_api_error(raw.get("/vectors/list", params={"namespace": kept,
                                                     "paginationToken": "!!"}), 400, "pagination")
    for limit in (0, 10_001, True, 1.5, "ten", [1]):
        assert_api_error(raw.post("/vectors/fetch_by_metadata",
                                  json={**by_metadata, "limit": limit}), 400, "limit")
    for limit in ("0", "101", "x"):
        assert_api_error(raw.get("/vectors/list", params={"namespace": kept, "limit": limit}),
                         400, "limit")
    assert raw.get("/vectors/list", params={"namespace": kept, "limit": "100"}).json()[
        "vectors"] == [{"id": "keep"}]


# -- response sizes ----------------------------------------------------------------------------

WIDE = 2_000  # 600 records of 2,000 dimensions: about 13 MB of JSON values


@pytest.fixture(scope="module")
def wide_index(backend: Backend) -> Iterator[httpx.Client]:
    """An index of 600 records of 2,000 dimensions (each ~22 KB as JSON), ids w000-w599."""
    if backend.server is None:
        pytest.skip("response caps are the local server's")
    name = backend.create_index(WIDE)
    host = backend.client.describe_index(name).host
    rng = np.random.default_rng(3)
    with httpx.Client(base_url=host, headers={"Api-Key": "k"}, timeout=60) as client:
        for start in range(0, 600, 50):
            vectors = [{"id": f"w{i:03d}", "values": rng.standard_normal(WIDE).tolist(),
                        "metadata": {"i": i}} for i in range(start, start + 50)]
            assert client.post("/vectors/upsert", json={"vectors": vectors}).status_code == 200
        yield client
    backend.drop_index(name)


def test_a_query_whose_values_cannot_fit_in_4_mb_is_refused_before_searching(
        wide_index: httpx.Client) -> None:
    vector = [1.0] * WIDE
    assert_api_error(wide_index.post("/query", json={"topK": 1_000, "vector": vector,
                                                     "includeValues": True}),
                     400, "over the 4MB limit: lower topK or leave out values")
    fine = wide_index.post("/query", json={"topK": 40, "vector": vector, "includeValues": True})
    assert fine.status_code == 200 and len(fine.json()["matches"]) == 40
    assert len(fine.content) <= 4 * MIB
    ids = wide_index.post("/query", json={"topK": 1_000, "vector": vector})
    assert len(ids.json()["matches"]) == 600
    # What counts is what can match: a filter leaving 20 records fits.
    few = wide_index.post("/query", json={"topK": 1_000, "vector": vector, "includeValues": True,
                                          "filter": {"i": {"$lt": 20}}})
    assert few.status_code == 200, few.text[:300]
    assert sorted(m["id"] for m in few.json()["matches"]) == [f"w{i:03d}" for i in range(20)]


def test_fetch_by_metadata_pages_stay_under_4_mb_and_cover_every_record(
        wide_index: httpx.Client) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        body: dict[str, Any] = {"filter": {"i": {"$gte": 0}}, "limit": 10_000}
        if token:
            body["paginationToken"] = token
        response = wide_index.post("/vectors/fetch_by_metadata", json=body)
        assert response.status_code == 200, response.text[:300]
        assert len(response.content) <= 4 * MIB
        page = response.json()
        seen += list(page["vectors"])
        pages += 1
        token = page.get("pagination", {}).get("next")
        if not token:
            break
    assert pages >= 4  # ~180 records a page
    assert seen == [f"w{i:03d}" for i in range(600)]


def test_a_fetch_of_600_wide_records_still_answers(wide_index: httpx.Client) -> None:
    ids = [f"w{i:03d}" for i in range(600)]
    response = wide_index.get("/vectors/fetch", params={"ids": ids})
    assert response.status_code == 200
    assert len(response.content) > 4 * MIB
    vectors = response.json()["vectors"]
    assert list(vectors) == ids and len(vectors["w599"]["values"]) == WIDE


def test_the_largest_dimension_pinecone_allows_works_end_to_end(backend: Backend) -> None:
    if backend.server is None:
        pytest.skip("raw HTTP checks target the local server")
    name = backend.create_index(20_000)
    try:
        host = backend.client.describe_index(name).host
        values = [0.0] * 19_999 + [1.0]
        with httpx.Client(base_url=host, headers={"Api-Key": "k"}) as client:
            upserted = client.post("/vectors/upsert", json={"vectors": [{"id": "w",
                                                                           "values": values}]})
            assert upserted.status_code == 200, upserted.text
            found = client.post("/query", json={"topK": 1, "vector": values,
                                                "includeValues": True}).json()["matches"]
            assert found[0]["id"] == "w" and found[0]["values"][-1] == 1.0
            assert_api_error(client.post("/query", json={"topK": 1, "vector": values[:-1]}),
                             400, "Vector dimension 19999 does not match")
    finally:
        backend.drop_index(name)
