"""The local runtime's parts that need no server and run no program: binary lookup errors,
users, directories, pid files, URLs (tests/integration/test_pg_runtime_programs.py runs the
installed binaries and child processes)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from refarch.bootstrap import database_url
from refarch.db.binaries import find_pg_binaries
from refarch.db.connect import redact_url
from refarch.db.privileges import ServerUser, blocking_directory, choose_server_user, is_root
from refarch.db.processes import read_pid
from refarch.db.server import LocalPostgres, default_runtime_root, socket_url
from refarch.errors import PostgresRuntimeError
from refarch.settings import Settings

ROOT_ONLY = pytest.mark.skipif(not is_root(), reason="needs root (as in CI)")


def test_pg_bin_without_the_programs_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "initdb").write_text("")
    with pytest.raises(PostgresRuntimeError, match=rf"PG_BIN={tmp_path} does not contain .*pg_ctl"):
        find_pg_binaries(str(tmp_path))


@pytest.mark.parametrize("port", [0, 70000])
def test_an_invalid_port_is_refused(tmp_path: Path, port: int) -> None:
    with pytest.raises(PostgresRuntimeError, match=f"port {port} is not a valid TCP port"):
        LocalPostgres(tmp_path, port)


def test_paths_that_postgres_tools_cannot_quote_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PostgresRuntimeError, match="quote"):
        LocalPostgres(tmp_path / 'it"s', 5999)


def test_a_deep_root_gets_a_short_socket_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = LocalPostgres(deep, 5999)
    assert len(str(server.socket_dir / ".s.PGSQL.5999")) < 108
    assert server.socket_dir != LocalPostgres(tmp_path / ("x" * 120), 5999).socket_dir
    assert LocalPostgres(tmp_path, 5999).socket_dir == tmp_path / "postgres-run"


def test_socket_url_escapes_the_directory() -> None:
    url = socket_url(Path("/tmp/a b&c"), 5432, "shop")
    assert url == "postgresql:///shop?host=%2Ftmp%2Fa%20b%26c&port=5432&user=refarch"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cret@db.example:5432/shop",
         "postgresql://app:***@db.example:5432/shop"),
        ("postgresql://app@db/shop", "postgresql://app@db/shop"),
        ("host=db user=app password=s3cret dbname=shop",
         "host=db user=app password=*** dbname=shop"),
        ("postgresql:///shop?host=/tmp&password=s3cret",
         "postgresql:///shop?host=/tmp&password=***"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_database_url_is_returned_as_is(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "h", database_url="postgresql://u@h/db")
    assert database_url(settings) == "postgresql://u@h/db"
    assert not (tmp_path / "h").exists()


def test_read_pid_tolerates_missing_and_garbage(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "missing") is None
    (tmp_path / "pid").write_text("garbage\n")
    assert read_pid(tmp_path / "pid") is None
    (tmp_path / "pid").write_text("-1234\n/data\n")
    assert read_pid(tmp_path / "pid") == 1234


def test_not_root_runs_as_the_caller(tmp_path: Path) -> None:
    if is_root():
        pytest.skip("as root the server user is someone else (tested below)")
    assert choose_server_user("anyone").uid == os.geteuid()
    settings = Settings(home=tmp_path / "home")
    assert default_runtime_root(settings) == (tmp_path / "home", None)


@ROOT_ONLY
def test_as_root_an_unprivileged_user_is_chosen(tmp_path: Path) -> None:
    user = choose_server_user(None)
    assert user.uid != 0 and user.name in ("postgres", "nobody")
    assert choose_server_user("nobody").name == "nobody"
    with pytest.raises(PostgresRuntimeError, match="REFARCH_PG_USER=no-such-user-xyz: no such"):
        choose_server_user("no-such-user-xyz")
    with pytest.raises(PostgresRuntimeError, match="is root"):
        choose_server_user("root")


@ROOT_ONLY
def test_as_root_an_existing_cluster_runs_as_its_owner(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    nobody = pwd.getpwnam("nobody")
    os.chown(data, nobody.pw_uid, nobody.pw_gid)
    assert choose_server_user("postgres", data).name == "nobody"
    os.chown(data, 0, 0)
    with pytest.raises(PostgresRuntimeError, match="owned by root"):
        choose_server_user(None, data)


@ROOT_ONLY
def test_blocking_directory_finds_the_first_one_the_user_cannot_enter() -> None:
    nobody = ServerUser.from_uid(pwd.getpwnam("nobody").pw_uid)
    base = Path(tempfile.mkdtemp(prefix="refarch-test-blocking-", dir="/tmp"))
    try:
        base.chmod(0o755)
        locked = base / "open" / "locked"
        locked.mkdir(parents=True)
        (base / "open").chmod(0o755)
        locked.chmod(0o700)
        (locked / "inner").mkdir(mode=0o700)
        target = locked / "inner" / "data"
        assert blocking_directory(target, nobody) == locked
        assert blocking_directory(base / "open" / "data", nobody) is None
        assert blocking_directory(target, ServerUser.current()) is None  # root enters anything
        locked.chmod(0o711)  # search without read is enough
        assert blocking_directory(locked / "data", nobody) is None
    finally:
        shutil.rmtree(base)


def test_the_server_user_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"REFARCH_PG_USER": " pgrun "}).pg_user == "pgrun"
    assert Settings.from_env({}).pg_user is None


def test_a_home_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    server = LocalPostgres(tmp_path / "a-file" / "home", 5999)
    with pytest.raises(PostgresRuntimeError, match="cannot create .*a-file/home.*REFARCH_HOME"):
        server.start()
