"""Bad requests get Pinecone's errors (so the SDK raises its usual exceptions) and change nothing.

Some limits the SDK checks itself before sending (``top_k``, ids, nested metadata); the local
server enforces them too, which the raw-HTTP tests at the end check.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from pinecone.errors.exceptions import (
    ApiError,
    NotFoundError,
    PineconeTypeError,
    PineconeValueError,
    UnauthorizedError,
)

from tests.contract.index.backends import Backend
from tests.support.index_http import assert_api_error

ONE = [1.0] + [0.0] * 7


def _count(index, ns: str) -> int:
    stats = index.describe_index_stats()
    return stats.namespaces[ns].vector_count if ns in stats.namespaces else 0


@pytest.fixture
def seeded(backend: Backend, index8, ns: str):
    """A namespace holding one record, ``keep``."""
    index8.upsert(vectors=[("keep", ONE, {"genre": "drama"})], namespace=ns)
    backend.eventually(lambda: _assert(_count(index8, ns) == 1))
    return index8


def _assert(condition: bool) -> None:
    assert condition


def _unchanged(index, ns: str) -> None:
    assert _count(index, ns) == 1
    assert index.fetch(ids=["keep"], namespace=ns).vectors["keep"].metadata == {"genre": "drama"}


def test_wrong_dimension_on_upsert_stores_nothing(seeded, ns: str) -> None:
    with pytest.raises(ApiError) as caught:
        seeded.upsert(vectors=[("ok", ONE), ("short", [1.0, 2.0, 3.0])], namespace=ns)
    assert caught.value.status_code == 400
    assert "dimension" in caught.value.message.lower()
    assert seeded.fetch(ids=["ok", "short"], namespace=ns).vectors == {}
    _unchanged(seeded, ns)


def test_wrong_dimension_on_query_and_update(seeded, ns: str) -> None:
    with pytest.raises(ApiError) as caught:
        seeded.query(vector=[1.0, 2.0], top_k=3, namespace=ns)
    assert caught.value.status_code == 400
    with pytest.raises(ApiError):
        seeded.update(id="keep", values=[1.0, 2.0], namespace=ns)
    _unchanged(seeded, ns)


@pytest.mark.parametrize(
    "bad_filter",
    [
        {"genre": {"$regex": "dr.*"}},
        {"year": {"$gt": "2020"}},
        {"$and": []},
        {"$gt": 5},
        {"genre": {"$in": "drama"}},
    ],
)
def test_malformed_filter(seeded, ns: str, bad_filter: dict) -> None:
    with pytest.raises(ApiError) as caught:
        seeded.query(vector=ONE, top_k=3, namespace=ns, filter=bad_filter)
    assert caught.value.status_code == 400
    with pytest.raises(ApiError):
        seeded.delete(filter=bad_filter, namespace=ns)
    _unchanged(seeded, ns)


@pytest.mark.parametrize("top_k", [0, 10_001])
def test_top_k_out_of_range(seeded, ns: str, top_k: int) -> None:
    with pytest.raises(PineconeValueError):
        seeded.query(vector=ONE, top_k=top_k, namespace=ns)


def test_metadata_over_40_kb_stores_nothing(seeded, ns: str) -> None:
    with pytest.raises(ApiError) as caught:
        seeded.upsert(vectors=[("big", ONE, {"text": "x" * 41_000})], namespace=ns)
    assert caught.value.status_code == 400
    assert "40960" in caught.value.message or "40 KB" in caught.value.message
    assert seeded.fetch(ids=["big"], namespace=ns).vectors == {}
    with pytest.raises(ApiError):
        seeded.update(id="keep", set_metadata={"text": "x" * 41_000}, namespace=ns)
    _unchanged(seeded, ns)


def test_more_than_1000_vectors_in_one_request(seeded, ns: str) -> None:
    vectors = [(f"v{i}", ONE) for i in range(1001)]
    with pytest.raises(ApiError) as caught:
        seeded.upsert(vectors=vectors, namespace=ns)
    assert caught.value.status_code == 400
    _unchanged(seeded, ns)


def test_request_over_2_mb(seeded, ns: str) -> None:
    vectors = [(f"v{i}", ONE, {"pad": "y" * 30_000}) for i in range(80)]  # ~2.4 MB
    with pytest.raises(ApiError) as caught:
        seeded.upsert(vectors=vectors, namespace=ns)
    assert caught.value.status_code in (400, 413)
    _unchanged(seeded, ns)


def test_fetch_and_delete_more_than_1000_ids(seeded, ns: str) -> None:
    ids = [f"id{i}" for i in range(1001)]
    with pytest.raises(ApiError):
        seeded.fetch(ids=ids, namespace=ns)
    with pytest.raises(ApiError):
        seeded.delete(ids=ids, namespace=ns)
    _unchanged(seeded, ns)


def test_null_metadata_value_is_refused(seeded, ns: str) -> None:
    with pytest.raises(ApiError) as caught:
        seeded.upsert(vectors=[("n", ONE, {"genre": None})], namespace=ns)
    assert caught.value.status_code == 400
    _unchanged(seeded, ns)


def test_nested_metadata_is_refused_before_sending(seeded, ns: str) -> None:
    with pytest.raises(PineconeTypeError):
        seeded.upsert(vectors=[("n", ONE, {"nested": {"a": 1}})], namespace=ns)


def test_all_zero_vector_is_refused_for_cosine(seeded, ns: str) -> None:
    with pytest.raises(ApiError) as caught:
        seeded.upsert(vectors=[("zero", [0.0] * 8)], namespace=ns)
    assert caught.value.status_code == 400
    _unchanged(seeded, ns)


def test_sparse_values_on_a_dense_index(seeded, ns: str) -> None:
    with pytest.raises(ApiError):
        seeded.upsert(
            vectors=[{"id": "s", "values": ONE,
                      "sparse_values": {"indices": [1], "values": [0.5]}}],
            namespace=ns,
        )
    _unchanged(seeded, ns)


def test_unknown_namespace_describe_and_delete(seeded, ns: str) -> None:
    with pytest.raises(NotFoundError):
        seeded.describe_namespace(name=ns + "-nope")
    with pytest.raises(NotFoundError):
        seeded.delete_namespace(name=ns + "-nope")


def test_wrong_api_key(backend: Backend, index8) -> None:
    from pinecone import Pinecone

    if backend.server is None:
        pc = Pinecone(api_key="pcsk_not_a_real_key")
        with pytest.raises(UnauthorizedError):
            pc.list_indexes()
        return
    # The contract server accepts any non-empty key; a server with a configured key is
    # tested in tests/unit/test_index_process.py. An empty key never leaves the SDK.
    with pytest.raises(PineconeValueError):
        Pinecone(api_key=" ", host=backend.server.url)


# -- the local server checks what the SDK checks before sending --------------------------------


_error = assert_api_error


def test_server_checks_top_k(raw: httpx.Client) -> None:
    for k in (0, 10_001, "5", None):
        _error(raw.post("/query", json={"topK": k, "vector": ONE}), 400, "topK")


def test_server_checks_ids_and_metadata(raw: httpx.Client, ns: str) -> None:
    _error(raw.post("/vectors/upsert", json={"vectors": [{"id": "", "values": ONE}]}), 400,
           "must not be empty")
    _error(raw.post("/vectors/upsert", json={"vectors": [{"id": "x" * 513, "values": ONE}]}),
           400, "maximum is 512")
    _error(raw.post("/vectors/upsert", json={"vectors": [{"id": "é", "values": ONE}]}), 400,
           "ASCII")
    _error(raw.post("/vectors/upsert",
                    json={"vectors": [{"id": "a", "values": ONE, "metadata": {"m": {"x": 1}}}]}),
           400, "for field 'm'")
    _error(raw.post("/vectors/upsert",
                    json={"vectors": [{"id": "a", "values": ONE, "metadata": {"m": [1, 2]}}]}),
           400, "list of strings")
    _error(raw.post("/vectors/upsert",
                    json={"vectors": [{"id": "a", "values": ["x"] + ONE[1:]}]}), 400,
           "must be a number")
    _error(raw.post("/vectors/upsert", content=b"{not json"), 400, "not valid JSON")
    _error(raw.post("/query", json={"topK": 1, "vector": ONE, "id": "a"}), 400, "both")
    _error(raw.get("/vectors/fetch"), 400, "ids")
    _error(raw.post("/vectors/delete", json={"namespace": ns}), 400, "exactly one")
    _error(raw.post("/vectors/delete", json={"filter": {}}), 400, "empty metadata filter")
    assert raw.get("/vectors/fetch", params={"ids": ["a"], "namespace": ns}).json()["vectors"] == {}


def test_server_answers_unknown_routes_the_pinecone_way(raw: httpx.Client) -> None:
    _error(raw.post("/bulk/imports", json={"uri": "s3://x"}), 404, "not supported")
    _error(raw.post("/records/namespaces/x/search", json={}), 400, "not supported")


def test_server_rejects_missing_api_key(backend: Backend, index8) -> None:
    if backend.server is None:
        pytest.skip("raw HTTP checks target the local server")
    response = httpx.post(f"{index8.host}/query", json={"topK": 1, "vector": ONE})
    _error(response, 401, "API key")


def test_values_written_as_float32_come_back_exactly(backend: Backend, index8, ns: str) -> None:
    values = np.random.default_rng(7).standard_normal(8).astype(np.float32)
    index8.upsert(vectors=[("f", values)], namespace=ns)
    backend.eventually(lambda: _assert(
        np.array_equal(np.float32(index8.fetch(ids=["f"], namespace=ns).vectors["f"].values),
                       values)))
