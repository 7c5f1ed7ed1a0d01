"""The app's tests run against a real local stack: `refarch up` with a small catalog.

One stack per session (Postgres, index server, relay, one indexer, reconcile and the app
itself), started exactly as a user would, with ``refarch up --detach`` in a throwaway
``REFARCH_HOME`` on free ports, and stopped with ``refarch down``. AppTest tests inject
:class:`~refarch.webapp.services.AppServices` built from the same settings; the browser test
opens the app that ``up`` started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from refarch.settings import Settings
from refarch.webapp.services import AppServices, build_app_services
from tests.support.dirs import scratch_dir
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
#: Products in the test catalog: enough for filters and paging, quick to embed.
CATALOG_SIZE = 300
#: Seconds `refarch up` may take (model loads, 300 embeddings, on 2 busy cores).
UP_TIMEOUT = 600


@dataclass(frozen=True)
class Stack:
    """A running local stack: its environment, settings and `refarch status --json`."""

    env: dict[str, str]
    settings: Settings
    status: dict

    def refarch(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the refarch CLI against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "refarch.cli", *args], env=self.env, cwd=ROOT,
            capture_output=True, text=True, timeout=timeout,
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """`refarch up --detach --generate 300` in a fresh REFARCH_HOME; `refarch down` after."""
    # Postgres runs as an unprivileged user when we are root: it must reach its directory.
    home = scratch_dir("refarch-app-test-")
    # Only this stack's settings: nothing inherited may point the test elsewhere.
    inherited = {
        key: value for key, value in os.environ.items()
        if not (key.startswith("REFARCH_") and key != "REFARCH_PG_USER")
        and key not in ("DATABASE_URL", "PINECONE_API_KEY")
    }
    env = {
        **inherited,
        "REFARCH_HOME": str(home),
        "REFARCH_PG_PORT": str(free_port()),
        "REFARCH_INDEX_PORT": str(free_port()),
        "REFARCH_APP_PORT": str(free_port()),
        "REFARCH_INDEXER_WORKERS": "1",
        "REFARCH_RECONCILE_INTERVAL": "30",
    }
    up = subprocess.run(
        [sys.executable, "-m", "refarch.cli", "up", "--detach", "--no-progress",
         "--generate", str(CATALOG_SIZE)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=UP_TIMEOUT,
    )
    try:
        if up.returncode != 0:
            logs = "\n".join(
                f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                for log in sorted((home / "logs").glob("*.log"))
            )
            pytest.fail(f"refarch up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}\n{logs}")
        status = subprocess.run(
            [sys.executable, "-m", "refarch.cli", "status", "--json"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        )
        yield Stack(env, Settings.from_env(env), json.loads(status.stdout))
    finally:
        subprocess.run(
            [sys.executable, "-m", "refarch.cli", "down"], env=env, cwd=ROOT,
            capture_output=True, text=True, timeout=180,
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
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
