"""Data plane: upsert, fetch, query, update, delete, list, namespaces, stats — through the SDK."""

from __future__ import annotations

import numpy as np
import pytest
from pinecone import Vector

from tests.contract.index.backends import Backend

UNIT = [[1.0 if i == j else 0.0 for i in range(8)] for j in range(8)]


def vec(seed: int) -> list[float]:
    """A deterministic non-zero 8-d vector whose values are exact in float32."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(8).astype(np.float32).tolist()


def test_upsert_fetch_round_trip(backend: Backend, index8, ns: str) -> None:
    response = index8.upsert(
        vectors=[
            {"id": "a", "values": vec(1), "metadata": {"genre": "drama", "year": 2020,
                                                        "rating": 7.5, "new": True,
                                                        "tags": ["x", "y"]}},
            ("b", vec(2), {"genre": "comedy"}),
            ("c", vec(3)),
            Vector(id="d", values=vec(4), metadata={"empty_list": []}),
        ],
        namespace=ns,
    )
    assert response.upserted_count == 4

    def check() -> None:
        fetched = index8.fetch(ids=["a", "b", "c", "d", "nope"], namespace=ns)
        assert set(fetched.vectors) == {"a", "b", "c", "d"}
        assert fetched.namespace == ns
        a = fetched.vectors["a"]
        assert np.array_equal(np.float32(a.values), np.float32(vec(1)))
        # Numbers are 64-bit floats on the server (2020 == 2020.0 either way).
        assert a.metadata == {"genre": "drama", "year": 2020.0, "rating": 7.5, "new": True,
                              "tags": ["x", "y"]}
        assert fetched.vectors["b"].metadata == {"genre": "comedy"}
        assert not fetched.vectors["c"].metadata
        assert fetched.vectors["d"].metadata == {"empty_list": []}

    backend.eventually(check)


def test_upsert_overwrites_values_and_metadata(backend: Backend, index8, ns: str) -> None:
    index8.upsert(vectors=[("a", vec(1), {"keep": "no", "genre": "drama"})], namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 1))
    index8.upsert(vectors=[("a", vec(2), {"genre": "comedy"})], namespace=ns)

    def check() -> None:
        a = index8.fetch(ids=["a"], namespace=ns).vectors["a"]
        assert np.array_equal(np.float32(a.values), np.float32(vec(2)))
        assert a.metadata == {"genre": "comedy"}  # replaced, not merged
        assert index8.describe_index_stats().namespaces[ns].vector_count == 1

    backend.eventually(check)


def _count_is(index, ns: str, n: int) -> None:
    stats = index.describe_index_stats()
    count = stats.namespaces[ns].vector_count if ns in stats.namespaces else 0
    assert count == n, f"{count} != {n}"


def test_query_by_vector_and_by_id(backend: Backend, index8, ns: str) -> None:
    index8.upsert(
        vectors=[(f"u{j}", UNIT[j], {"j": j}) for j in range(8)]
        + [("near0", [0.9, 0.1, 0, 0, 0, 0, 0, 0], {"j": 99})],
        namespace=ns,
    )

    def check() -> None:
        result = index8.query(vector=UNIT[0], top_k=2, namespace=ns, include_metadata=True)
        assert [m.id for m in result.matches] == ["u0", "near0"]
        assert result.matches[0].score == pytest.approx(1.0, abs=1e-6)
        assert result.matches[1].score == pytest.approx(0.9 / np.hypot(0.9, 0.1), abs=1e-6)
        assert result.matches[1].metadata == {"j": 99.0}
        assert result.matches[0].values == []  # not asked for
        assert result.namespace == ns
        by_id = index8.query(id="near0", top_k=2, namespace=ns, include_values=True)
        assert [m.id for m in by_id.matches] == ["near0", "u0"]
        assert by_id.matches[0].values == pytest.approx([0.9, 0.1, 0, 0, 0, 0, 0, 0], abs=1e-6)
        assert by_id.matches[0].metadata is None  # not asked for

    backend.eventually(check)


def test_query_by_unknown_id_and_in_unknown_namespace_find_nothing(index8, ns: str) -> None:
    assert index8.query(id="nope", top_k=3, namespace=ns).matches == []
    assert index8.query(vector=UNIT[1], top_k=3, namespace=ns + "-empty").matches == []


def test_update_values_and_metadata(backend: Backend, index8, ns: str) -> None:
    index8.upsert(vectors=[("a", UNIT[0], {"genre": "drama", "year": 2020})], namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 1))
    response = index8.update(id="a", set_metadata={"year": 2021, "new": True}, namespace=ns)
    assert response.matched_records in (None, 1)
    index8.update(id="a", values=UNIT[3], namespace=ns)

    def check() -> None:
        a = index8.fetch(ids=["a"], namespace=ns).vectors["a"]
        assert a.metadata == {"genre": "drama", "year": 2021.0, "new": True}  # merged
        assert a.values == UNIT[3]
        top = index8.query(vector=UNIT[3], top_k=1, namespace=ns).matches[0]
        assert top.id == "a" and top.score == pytest.approx(1.0, abs=1e-6)
        assert index8.query(vector=UNIT[3], top_k=1, namespace=ns,
                            filter={"year": 2021}).matches[0].id == "a"

    backend.eventually(check)


def test_update_of_a_missing_id_changes_nothing(backend: Backend, index8, ns: str) -> None:
    index8.upsert(vectors=[("a", UNIT[0])], namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 1))
    index8.update(id="ghost", set_metadata={"x": "y"}, namespace=ns)
    assert index8.fetch(ids=["ghost"], namespace=ns).vectors == {}
    _count_is(index8, ns, 1)


def test_update_by_filter(backend: Backend, index8, ns: str) -> None:
    index8.upsert(
        vectors=[(f"v{i}", vec(i), {"group": "odd" if i % 2 else "even", "i": i})
                 for i in range(10)],
        namespace=ns,
    )
    backend.eventually(lambda: _count_is(index8, ns, 10))
    dry = index8.update(filter={"group": "odd"}, set_metadata={"seen": True}, namespace=ns,
                        dry_run=True)
    assert dry.matched_records == 5
    assert "seen" not in index8.fetch(ids=["v1"], namespace=ns).vectors["v1"].metadata
    done = index8.update(filter={"group": "odd"}, set_metadata={"seen": True}, namespace=ns)
    assert done.matched_records == 5

    def check() -> None:
        fetched = index8.fetch(ids=[f"v{i}" for i in range(10)], namespace=ns).vectors
        for i in range(10):
            assert fetched[f"v{i}"].metadata.get("seen") is ((i % 2 == 1) or None)
            assert fetched[f"v{i}"].metadata["i"] == float(i)

    backend.eventually(check)


def test_delete_by_ids_filter_and_all(backend: Backend, index8, ns: str) -> None:
    index8.upsert(
        vectors=[(f"v{i}", vec(i), {"i": i, "kind": "a" if i < 5 else "b"}) for i in range(10)],
        namespace=ns,
    )
    backend.eventually(lambda: _count_is(index8, ns, 10))
    index8.delete(ids=["v0", "v1", "missing"], namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 8))
    assert set(index8.fetch(ids=["v0", "v2"], namespace=ns).vectors) == {"v2"}
    index8.delete(filter={"kind": "b", "i": {"$gte": 8}}, namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 6))
    assert set(index8.fetch(ids=["v7", "v8", "v9"], namespace=ns).vectors) == {"v7"}
    ids = {m.id for m in index8.query(vector=vec(8), top_k=10, namespace=ns).matches}
    assert ids == {"v2", "v3", "v4", "v5", "v6", "v7"}
    index8.delete(delete_all=True, namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 0))
    assert index8.query(vector=vec(8), top_k=10, namespace=ns).matches == []


def test_namespaces_are_isolated(backend: Backend, index8, ns: str) -> None:
    other = ns + "-other"
    index8.upsert(vectors=[("same", UNIT[0], {"where": "first"})], namespace=ns)
    index8.upsert(vectors=[("same", UNIT[1], {"where": "second"})], namespace=other)

    def check() -> None:
        assert index8.fetch(ids=["same"], namespace=ns).vectors["same"].values == UNIT[0]
        assert index8.fetch(ids=["same"], namespace=other).vectors["same"].values == UNIT[1]
        hit = index8.query(vector=UNIT[1], top_k=5, namespace=ns, include_metadata=True)
        assert [(m.id, m.metadata) for m in hit.matches] == [("same", {"where": "first"})]
        stats = index8.describe_index_stats()
        assert stats.namespaces[ns].vector_count == 1
        assert stats.namespaces[other].vector_count == 1

    backend.eventually(check)
    index8.delete(delete_all=True, namespace=other)
    backend.eventually(lambda: _count_is(index8, other, 0))
    backend.eventually(lambda: _count_is(index8, ns, 1))


def test_default_namespace(backend: Backend) -> None:
    name = backend.create_index(8)
    try:
        index = backend.client.Index(name)
        index.upsert(vectors=[("d", UNIT[2])])

        def check() -> None:
            stats = index.describe_index_stats()
            assert stats.namespaces[""].vector_count == 1
            assert stats.total_vector_count == 1
            assert index.fetch(ids=["d"]).vectors["d"].values == UNIT[2]
            assert index.fetch(ids=["d"], namespace="__default__").vectors["d"].values == UNIT[2]
            assert index.describe_namespace(name="__default__").record_count == 1
            assert [n.name for n in index.list_namespaces_paginated().namespaces] == ["__default__"]

        backend.eventually(check)
    finally:
        backend.drop_index(name)


def test_list_ids_with_prefix_and_pagination(backend: Backend, index8, ns: str) -> None:
    ids = [f"doc{i:03d}#chunk{j}" for i in range(60) for j in range(4)] + ["other-1", "other-2"]
    for start in range(0, len(ids), 100):
        index8.upsert(vectors=[(vid, vec(k + start)) for k, vid in enumerate(ids[start:start + 100])],
                      namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, len(ids)))
    first = index8.list_paginated(namespace=ns, prefix="doc", limit=100)
    assert [v.id for v in first.vectors] == sorted(ids)[:100]
    assert first.pagination is not None and first.pagination.next
    second = index8.list_paginated(namespace=ns, prefix="doc", limit=100,
                                   pagination_token=first.pagination.next)
    assert [v.id for v in second.vectors] == sorted(ids)[100:200]
    pages = list(index8.list(namespace=ns, prefix="doc", limit=100))
    assert [len(p.vectors) for p in pages] == [100, 100, 40]
    assert pages[-1].pagination is None
    listed = [v.id for page in pages for v in page.vectors]
    assert listed == sorted(i for i in ids if i.startswith("doc"))
    assert [v.id for p in index8.list(namespace=ns, prefix="doc042#") for v in p.vectors] == [
        f"doc042#chunk{j}" for j in range(4)
    ]
    assert list(index8.list(namespace=ns, prefix="zzz")) == []
    everything = [v.id for p in index8.list(namespace=ns) for v in p.vectors]
    assert everything == sorted(ids)


def test_namespace_api(backend: Backend, index8, ns: str) -> None:
    index8.upsert(vectors=[("a", UNIT[0]), ("b", UNIT[1])], namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 2))
    description = index8.describe_namespace(name=ns)
    assert description.name == ns and description.record_count == 2
    listed = {n.name: n.record_count for page in index8.list_namespaces(prefix=ns)
              for n in page.namespaces}
    assert listed == {ns: 2}
    created = index8.create_namespace(name=ns + "-made")
    assert created.name == ns + "-made"
    assert index8.describe_namespace(name=ns + "-made").record_count == 0
    index8.delete_namespace(name=ns)
    index8.delete_namespace(name=ns + "-made")

    def check() -> None:
        names = {n.name for page in index8.list_namespaces(prefix=ns) for n in page.namespaces}
        assert names == set()
        assert index8.fetch(ids=["a"], namespace=ns).vectors == {}

    backend.eventually(check)


def test_stats_with_filter(backend: Backend, index8, ns: str) -> None:
    index8.upsert(vectors=[(f"v{i}", vec(i), {"i": i}) for i in range(20)], namespace=ns)

    def check() -> None:
        stats = index8.describe_index_stats(filter={"i": {"$lt": 5}})
        assert stats.namespaces[ns].vector_count == 5
        assert index8.describe_index_stats().namespaces[ns].vector_count == 20

    backend.eventually(check)


def test_fetch_by_metadata_pages_through_matches(backend: Backend, index8, ns: str) -> None:
    index8.upsert(vectors=[(f"v{i:02d}", vec(i), {"i": i}) for i in range(30)], namespace=ns)
    backend.eventually(lambda: _count_is(index8, ns, 30))
    first = index8.fetch_by_metadata(filter={"i": {"$gte": 10}}, namespace=ns, limit=15)
    assert len(first.vectors) == 15
    assert first.pagination is not None and first.pagination.next
    rest = index8.fetch_by_metadata(filter={"i": {"$gte": 10}}, namespace=ns, limit=15,
                                    pagination_token=first.pagination.next)
    found = set(first.vectors) | set(rest.vectors)
    assert found == {f"v{i:02d}" for i in range(10, 30)}
    assert rest.vectors["v29"].metadata == {"i": 29.0}
