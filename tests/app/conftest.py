"""Fixtures of the app's tests: one real local stack for the package (tests/app/app_stack.py),
the app's services built from its settings, and what AppTest and the browser test need.

AppTest tests inject :class:`~refarch.webapp.services.AppServices` built from the stack's
settings; the browser test opens the app that ``refarch up`` started. With pytest-xdist one
worker runs all of them (tests/support/scheduling.py), so the stack is started once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from refarch.webapp.services import AppServices, build_app_services
from tests.app.app_stack import app_stack
from tests.support.stack import Stack


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    """The running stack, for every test in tests/app/; stopped once they are done (not at the
    end of the session: its services would keep two busy cores busier meanwhile)."""
    with app_stack() as started:
        yield started


@pytest.fixture(scope="package")
def services(stack: Stack) -> Iterator[AppServices]:
    """The app's services, built from the stack's settings the way the app builds its own."""
    built = build_app_services(stack.settings)
    try:
        yield built
    finally:
        built.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the test item (the browser test screenshots failures)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(autouse=True)
def _restore_main_module() -> Iterator[None]:
    """Put back ``sys.modules["__main__"]`` after each test.

    AppTest runs the page as ``__main__`` in this process and leaves it there; a later test that
    starts processes with multiprocessing's spawn would then re-run the Streamlit page in every
    child instead of pytest's own entry point.
    """
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
