"""Fixtures for the sync pipeline's tests: a fresh migrated database per test, role URLs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from refarch.bootstrap import make_index, make_indexer, pinecone_client, with_user
from refarch.index.process import find_free_port, start_index_server
from refarch.pipeline.changes import ProductChange
from refarch.queue.local import PostgresQueue
from refarch.settings import Settings

from .harness import Pipeline


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


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The real model (all-MiniLM-L6-v2), loaded once."""
    from refarch.embeddings import get_embedder

    return get_embedder(Settings.from_env({}))


@pytest.fixture
def pipeline(pipeline_db: str, relay_url: str, indexer_url: str, vector_index: Any, embedder: Any) -> Iterator[Pipeline]:
    """Relay and indexer steps over a fresh database and index (max 3 receives, 30 s timeout)."""
    built = Pipeline(pipeline_db, relay_url, indexer_url, vector_index, embedder,
                     max_receives=3, visibility_timeout=30)
    try:
        yield built
    finally:
        built.close()


class PipelineParts:
    """Extra consumers on the same database and index (for races between indexers)."""

    def __init__(self, owner_url: str, indexer_url: str, index: Any, embedder: Any) -> None:
        self.owner_url, self.indexer_url, self.index, self.embedder = owner_url, indexer_url, index, embedder
        self._closers: list[Any] = []

    def second_worker(self) -> Any:
        side = PostgresQueue(self.owner_url, name="side", max_receives=3, visibility_timeout=30)
        settings = Settings.from_env({}).with_(queue_max_receives=3, queue_visibility_timeout=30,
                                               indexer_batch_size=8)
        worker = make_indexer(settings, queue=side, index=self.index, embedder=self.embedder,
                              connect=lambda: psycopg.connect(self.indexer_url, autocommit=True))
        self._closers += [side.close, worker.close]

        class Second:
            def handle_now(self, change: ProductChange) -> Any:
                side.send_batch([change.to_message()])
                return worker.step()

        return Second()

    def close(self) -> None:
        for close in self._closers:
            close()


@pytest.fixture
def pipeline_parts(pipeline_db: str, indexer_url: str, vector_index: Any, embedder: Any) -> Iterator[PipelineParts]:
    parts = PipelineParts(pipeline_db, indexer_url, vector_index, embedder)
    try:
        yield parts
    finally:
        parts.close()
