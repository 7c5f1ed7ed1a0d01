"""Fixtures for the sync pipeline's tests: a fresh migrated database per test, role URLs, an
index on a session's local index server (the model, ``embedder``, is tests/integration/conftest.py's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from refarch.bootstrap import make_index, pinecone_client, with_user
from refarch.index.process import find_free_port, start_index_server
from refarch.settings import Settings

from .harness import Pipeline, PipelineParts


@pytest.fixture
def pipeline_db(db_url: str) -> str:
    """The owner's URL of a fresh, migrated database (tests/conftest.py's ``db_url``)."""
    return db_url


@pytest.fixture
def relay_url(pipeline_db: str) -> str:
    """The fresh database, connecting as the relay role."""
    return with_user(pipeline_db, "refarch_relay")


@pytest.fixture
def indexer_url(pipeline_db: str) -> str:
    """The fresh database, connecting as the indexer role."""
    return with_user(pipeline_db, "refarch_indexer")


@pytest.fixture
def app_url(pipeline_db: str) -> str:
    """The fresh database, connecting as the app role."""
    return with_user(pipeline_db, "refarch_app")


@pytest.fixture(scope="session")
def index_settings(tmp_path_factory) -> Iterator[Settings]:
    """A local index server for the session; the settings that reach it."""
    port = find_free_port()
    settings = Settings.from_env({"REFARCH_INDEX_PORT": str(port)})
    with start_index_server(settings, tmp_path_factory.mktemp("index"), port):
        yield settings


@pytest.fixture
def vector_index(index_settings: Settings) -> Iterator[Any]:
    """A fresh, empty index on the session's server, deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    settings = index_settings.with_(index_name=name)
    index = make_index(settings)
    try:
        yield index
    finally:
        pinecone_client(settings).delete_index(name)


@pytest.fixture
def pipeline(pipeline_db: str, relay_url: str, indexer_url: str, vector_index: Any,
             embedder: Any) -> Iterator[Pipeline]:
    """Relay and indexer steps over a fresh database and index (max 3 receives, 30 s timeout)."""
    built = Pipeline(pipeline_db, relay_url, indexer_url, vector_index, embedder,
                     max_receives=3, visibility_timeout=30)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def pipeline_parts(pipeline_db: str, indexer_url: str, vector_index: Any,
                   embedder: Any) -> Iterator[PipelineParts]:
    """More consumers on the ``pipeline``'s database and index (races between indexers)."""
    parts = PipelineParts(pipeline_db, indexer_url, vector_index, embedder)
    try:
        yield parts
    finally:
        parts.close()
