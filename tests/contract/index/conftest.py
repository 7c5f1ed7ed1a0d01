"""Fixtures of the vector index contract suite: every test runs against each backend
(:mod:`tests.contract.index.backends` says which, and holds what tests import)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from refarch.index.process import IndexServerHandle, find_free_port, start_index_server
from refarch.settings import Settings
from tests.contract.index.backends import BACKENDS, LOCAL_SERVER_ARGS, Backend, open_backend


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServerHandle]:
    """The local index server, as a real subprocess with its own data directory (tuned so small
    tests reach every search path: exact search below 100 matching records, snapshots after
    every idle moment)."""
    home = tmp_path_factory.mktemp("index-contract")
    settings = Settings.from_env({"REFARCH_HOME": str(home)})
    handle = start_index_server(
        settings, data_dir=home / "data", port=find_free_port(), extra_args=LOCAL_SERVER_ARGS
    )
    yield handle
    assert handle.stop() == 0, handle.log_tail()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn (Pinecone only with credentials)."""
    return open_backend(request.param, request)


@pytest.fixture(scope="module")
def index8(backend: Backend) -> Iterator[Any]:
    """A dense cosine index of dimension 8, one per test module and backend."""
    name = backend.create_index(8)
    yield backend.client.Index(name)
    backend.drop_index(name)


@pytest.fixture
def ns() -> str:
    """A namespace of its own for each test."""
    return f"ns-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def raw(backend: Backend, index8: Any) -> Iterator[httpx.Client]:
    """Plain HTTP to ``index8``'s data plane on the local server (skipped for Pinecone): what
    the SDK would refuse to send."""
    if backend.server is None:
        pytest.skip("raw HTTP checks target the local server")
    with httpx.Client(base_url=index8.host, headers={"Api-Key": "k",
                                                     "X-Pinecone-Api-Version": "2026-07"}) as client:
        yield client
