"""The index services the contract suite runs against, as plain objects the tests import.

``local``: the local server (a real subprocess, see ``conftest.py``'s ``local_server``).
``pinecone``: Pinecone's cloud, only when ``PINECONE_API_KEY`` is set (skipped with the reason
otherwise). Tests of the SDK use only the SDK.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from pinecone import Pinecone, ServerlessSpec

from refarch.index.process import IndexServerHandle
from tests.support.waiting import eventually

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
        return eventually(check, self.patience, interval=1.0)

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


def open_backend(name: str, request: pytest.FixtureRequest) -> Backend:
    """The backend called ``name``: ``local`` uses the session's ``local_server`` fixture;
    ``pinecone`` skips the test unless ``PINECONE_API_KEY`` is set."""
    if name == "local":
        server = request.getfixturevalue("local_server")
        return Backend("local", Pinecone(api_key="contract-test-key", host=server.url), server, 0)
    key = os.environ.get("PINECONE_API_KEY")
    if not key:
        pytest.skip("PINECONE_API_KEY is not set: the contract suite runs against Pinecone's "
                    "cloud only with credentials")
    return Backend("pinecone", Pinecone(api_key=key), None, 120.0)
