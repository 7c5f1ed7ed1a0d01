"""Fixtures shared by the integration tests (PostgreSQL's are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from refarch.embeddings import Embedder, get_embedder
from refarch.settings import Settings


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real model (all-MiniLM-L6-v2) with the default settings, loaded once per process."""
    return get_embedder(Settings.from_env({}))
