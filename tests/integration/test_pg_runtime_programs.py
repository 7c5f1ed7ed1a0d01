"""The local runtime's parts that run programs but need no server: the installed PostgreSQL
binaries (``--version``) and the liveness of child processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from refarch.db.binaries import find_pg_binaries
from refarch.db.processes import is_alive, proc_state
from refarch.db.server import LocalPostgres
from refarch.errors import PostgresRuntimeError
from tests.support.waiting import wait_until


def test_the_installed_server_binaries_are_found() -> None:
    binaries = find_pg_binaries()
    assert binaries.major >= 12
    for program in ("initdb", "pg_ctl", "postgres"):
        assert os.access(binaries.path(program), os.X_OK)
    assert find_pg_binaries(str(binaries.bindir)) == binaries


def test_a_data_directory_of_another_major_version_is_named(tmp_path: Path) -> None:
    server = LocalPostgres(tmp_path, 5999)
    server.data_dir.mkdir()
    (server.data_dir / "PG_VERSION").write_text("9.6\n")
    with pytest.raises(PostgresRuntimeError, match="initialised by PostgreSQL 9 .*PG_BIN"):
        server.binaries()


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen(["true"])
    # Exited, not yet reaped: a zombie.
    assert wait_until(lambda: proc_state(child.pid) == "zombie", 10, interval=0.01)
    assert not is_alive(child.pid)
    child.wait()
    assert proc_state(child.pid) is None and not is_alive(child.pid)
    assert is_alive(os.getpid())
