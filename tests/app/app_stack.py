"""The stack the app's tests run against: `refarch up` with a small generated catalog.

Started exactly as a user would, with ``refarch up --detach`` in a throwaway ``REFARCH_HOME``
on free ports (Postgres, index server, relay, one indexer, reconcile and the app itself), and
stopped with ``refarch down``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from refarch.settings import Settings
from tests.support.dirs import scratch_dir
from tests.support.stack import Stack, log_tails, run_refarch, stack_env, stack_status

#: Products in the test catalog: enough for filters and paging, quick to embed.
CATALOG_SIZE = 300
#: Seconds `refarch up` may take (model loads, 300 embeddings, on 2 busy cores).
UP_TIMEOUT = 600


@contextmanager
def app_stack() -> Iterator[Stack]:
    """`refarch up --detach --generate CATALOG_SIZE` in a fresh REFARCH_HOME; `refarch down`
    and the directory removed afterwards (also when `up` fails, which fails the test)."""
    # Postgres runs as an unprivileged user when we are root: it must reach its directory.
    home = scratch_dir("refarch-app-test-")
    env = stack_env(home, REFARCH_INDEXER_WORKERS="1", REFARCH_RECONCILE_INTERVAL="30")
    try:
        up = run_refarch(env, "up", "--detach", "--no-progress", "--generate", str(CATALOG_SIZE),
                         timeout=UP_TIMEOUT)
        if up.returncode != 0:
            pytest.fail(f"refarch up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}\n"
                        f"{log_tails(home, 3000)}")
        yield Stack(env, Settings.from_env(env), stack_status(env))
    finally:
        run_refarch(env, "down", timeout=180)
        shutil.rmtree(home, ignore_errors=True)
