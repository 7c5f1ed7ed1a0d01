"""Fixtures of the vector index contract suite: every test runs against each backend.

``local``: the local server, started once per session as a real subprocess on a free port with
a fresh data directory (tuned so small tests reach every search path: exact search below 100
matching records, snapshots after every idle moment). ``pinecone``: Pinecone's cloud, only when
``PINECONE_API_KEY`` is set (skipped with the reason otherwise). Tests use only the SDK.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from pinecone import Pinecone, ServerlessSpec

from refarch.index.process import IndexServerHandle, find_free_port, start_index_server
from refarch.settings import Settings

T = TypeVar("T")

BACKENDS = ("local", "pinecone")
#: Engine settings of the local test server (small, so tests exercise every path).
LOCAL_SERVER_ARGS = (
    "--exact-limit", "100",
    "--snapshot-idle-seconds", "0.2",
    "--snapshot-min-changes", "1",
)


@dataclass
class Backend:
    """One index service under test."""

    name: str
    client: Pinecone
    server: IndexServerHandle | None
    #: How long to wait for a write to become visible (Pinecone is eventually consistent;
    #: the local server is not, so there a check runs exactly once).
    patience: float

    def eventually(self, check: Callable[[], T]) -> T:
        """Run ``check`` until it passes; locally it must pass the first time."""
        deadline = time.monotonic() + self.patience
        while True:
            try:
                return check()
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)

    def create_index(self, dimension: int, metric: str = "cosine", **kwargs: Any) -> str:
        """Create an index with a unique name; returns the name."""
        name = f"rc-{metric[:3]}-{uuid.uuid4().hex[:10]}"
        self.client.create_index(
            name=name, dimension=dimension, metric=metric,
            spec=ServerlessSpec(cloud="aws", region="us-east-1"), **kwargs,
        )
        return name

    def drop_index(self, name: str) -> None:
        """Delete an index if it still exists (turning deletion protection off first)."""
        if self.client.has_index(name):
            if self.client.describe_index(name).deletion_protection == "enabled":
                self.client.configure_index(name, deletion_protection="disabled")
            self.client.delete_index(name)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServerHandle]:
    """The local index server, as a real subprocess with its own data directory."""
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
    if request.param == "local":
        server = request.getfixturevalue("local_server")
        return Backend("local", Pinecone(api_key="contract-test-key", host=server.url), server, 0)
    key = os.environ.get("PINECONE_API_KEY")
    if not key:
        pytest.skip("PINECONE_API_KEY is not set: the contract suite runs against Pinecone's "
                    "cloud only with credentials")
    return Backend("pinecone", Pinecone(api_key=key), None, 120.0)


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
