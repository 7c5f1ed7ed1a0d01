"""Fixtures of the pipeline unit tests: the pipeline built from refarch.fakes (no process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.pipeline.fake_pipeline import FakePipeline


@pytest.fixture
def pipeline() -> Iterator[FakePipeline]:
    """Relay and indexer over fakes (max 3 receives, 30 s visibility timeout), as the
    integration suite's ``pipeline`` fixture is over the real parts."""
    built = FakePipeline(max_receives=3, visibility_timeout=30.0)
    try:
        yield built
    finally:
        built.close()
