"""Unit tests run in this process only: no process is started, no model is loaded.

The check covers each test's setup (its fixtures, whatever their scope) and its call; the
teardown is left alone, because the last test of a session also tears down the session's
servers, which other tests started.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.isolation import forbid_processes_and_model


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with forbid_processes_and_model():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with forbid_processes_and_model():
        return (yield)
