"""Control plane: create, describe, list, exists, configure, delete — and their errors."""

from __future__ import annotations

import uuid

import pytest
from pinecone import ServerlessSpec
from pinecone.errors.exceptions import (
    ApiError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PineconeValueError,
)

from tests.contract.index.backends import Backend


@pytest.mark.parametrize("metric", ["cosine", "dotproduct", "euclidean"])
def test_create_describe_list_delete(backend: Backend, metric: str) -> None:
    pc = backend.client
    name = backend.create_index(12, metric)
    try:
        model = pc.describe_index(name)
        assert model.name == name
        assert model.dimension == 12
        assert model.metric == metric
        assert model.vector_type == "dense"
        assert model.status.ready is True
        assert model.deletion_protection == "disabled"
        assert model.host.startswith(("http://", "https://"))
        assert model.spec.serverless.cloud == "aws"
        assert pc.has_index(name)
        assert name in [index.name for index in pc.indexes.list()]
        assert name in pc.list_indexes().names()
        stats = pc.Index(name).describe_index_stats()
        assert stats.dimension == 12 and stats.metric == metric
        assert stats.total_vector_count == 0
    finally:
        pc.delete_index(name)
    assert not pc.has_index(name)
    assert name not in pc.list_indexes().names()


def test_index_by_host_works_like_index_by_name(backend: Backend) -> None:
    name = backend.create_index(4)
    try:
        host = backend.client.describe_index(name).host
        by_host = backend.client.Index(host=host)
        by_host.upsert(vectors=[("a", [1.0, 0.0, 0.0, 0.0])])
        backend.eventually(
            lambda: _assert_equal(backend.client.Index(name).fetch(ids=["a"]).vectors.keys(), {"a"})
        )
    finally:
        backend.drop_index(name)


def _assert_equal(got, expected) -> None:
    assert set(got) == set(expected)


def test_creating_an_existing_index_conflicts(backend: Backend) -> None:
    name = backend.create_index(4)
    try:
        with pytest.raises(ConflictError):
            backend.client.create_index(
                name=name, dimension=4, metric="cosine",
                spec=ServerlessSpec(cloud="aws", region="us-east-1"),
            )
    finally:
        backend.drop_index(name)


def test_unknown_index(backend: Backend) -> None:
    missing = f"rc-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFoundError):
        backend.client.describe_index(missing)
    with pytest.raises(NotFoundError):
        backend.client.delete_index(missing)
    assert backend.client.has_index(missing) is False


def test_data_plane_of_an_unknown_index(backend: Backend) -> None:
    if backend.server is None:
        pytest.skip("a deleted cloud index has no host left to ask (DNS fails, not HTTP)")
    index = backend.client.Index(host=f"{backend.server.url}/data/rc-no-such-index")
    with pytest.raises(NotFoundError) as caught:
        index.query(vector=[1.0, 0.0], top_k=1)
    assert "rc-no-such-index" in str(caught.value)


@pytest.mark.parametrize("dimension", [0, 20_001])
def test_invalid_dimension_is_refused(backend: Backend, dimension: int) -> None:
    name = f"rc-bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ApiError) as caught:
        backend.client.create_index(
            name=name, dimension=dimension, metric="cosine",
            spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        )
    assert caught.value.status_code in (400, 422)
    assert not backend.client.has_index(name)


def test_invalid_metric_is_refused_before_sending(backend: Backend) -> None:
    with pytest.raises(PineconeValueError):
        backend.client.create_index(
            name="rc-bad-metric", dimension=4, metric="manhattan",
            spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        )


def test_deletion_protection_and_tags(backend: Backend) -> None:
    pc = backend.client
    name = backend.create_index(4, deletion_protection="enabled", tags={"team": "search"})
    try:
        model = pc.describe_index(name)
        assert model.deletion_protection == "enabled"
        assert model.tags == {"team": "search"}
        with pytest.raises(ForbiddenError):
            pc.delete_index(name)
        assert pc.has_index(name)
        model = pc.configure_index(name, deletion_protection="disabled",
                                   tags={"env": "test", "team": ""})
        assert model.deletion_protection == "disabled"
        assert pc.describe_index(name).tags == {"env": "test"}
        pc.delete_index(name)
        assert not pc.has_index(name)
    finally:
        backend.drop_index(name)
