"""The local PostgreSQL runtime against real servers: as root and as an ordinary user, start,
stop and status, restarts, crashes (kill -9), two instances, ports and sockets in use."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from refarch.bootstrap import database_url
from refarch.db import server as server_module
from refarch.db.privileges import ServerUser, is_root, run_as_prefix
from refarch.db.processes import is_alive
from refarch.db.server import LocalPostgres
from refarch.errors import PostgresRuntimeError
from refarch.settings import Settings
from tests.support.dirs import scratch_dir
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

Factory = Callable[..., LocalPostgres]
ROOT_ONLY = pytest.mark.skipif(not is_root(), reason="needs root (as in CI); run as root to test")


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def _query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def _wait_dead(pid: int, timeout: float = 10) -> None:
    assert wait_until(lambda: not is_alive(pid), timeout, interval=0.05), f"pid {pid} still alive"


@ROOT_ONLY
def test_as_root_the_server_runs_as_an_unprivileged_user(local_postgres: Factory) -> None:
    server = local_postgres(initdb=True)
    status = server.start()
    assert status.running and status.pid
    server_uid = _uid_of(status.pid)
    assert server_uid != 0
    assert server.data_dir.stat().st_uid == server_uid
    assert server.data_dir.stat().st_mode & 0o777 == 0o700
    assert status.server_user == pwd.getpwuid(server_uid).pw_name
    assert _query(status.url, "SELECT current_user, current_database()") == [
        ("refarch", "refarch")
    ]


_CHILD = r"""
import json, os, sys
import psycopg
from refarch.db.server import LocalPostgres
from refarch.settings import Settings

uid, gid, action = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
try:  # load psycopg's connection code while the venv is still readable
    psycopg.connect("host=/nonexistent port=1 connect_timeout=1")
except psycopg.Error:
    pass
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
server = LocalPostgres.from_settings(Settings.from_env())
if action == "start":
    status = server.start()
elif action == "stop":
    server.stop()
    status = server.status()
else:
    status = server.status()
print(json.dumps({"euid": os.geteuid(), "running": status.running, "pid": status.pid,
                  "url": status.url, "user": status.server_user}))
"""


def test_as_an_ordinary_user_the_server_runs_as_the_caller() -> None:
    """The runtime in a process that is not root (as root: dropped to ``nobody`` first)."""
    if is_root():
        entry = pwd.getpwnam("nobody")
        uid, gid = entry.pw_uid, entry.pw_gid
    else:
        uid, gid = os.getuid(), os.getgid()
    home = scratch_dir("refarch-test-user-")
    os.chown(home, uid, gid)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFARCH_", "PG"))}
    env.pop("DATABASE_URL", None)
    env.update(REFARCH_HOME=str(home), REFARCH_PG_PORT=str(free_port()))

    def child(action: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(uid), str(gid), action], env=env, cwd=home,
            capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    try:
        started = child("start")
        assert started["euid"] == uid != 0
        assert started["running"] and started["pid"]
        assert _uid_of(started["pid"]) == uid  # no privilege switch: the caller runs it
        assert (home / "postgres").stat().st_uid == uid
        assert _query(started["url"], "SELECT 1") == [(1,)]
        again = child("start")
        assert again["pid"] == started["pid"]
        stopped = child("stop")
        assert not stopped["running"]
        _wait_dead(started["pid"])
    finally:
        child("stop")
        subprocess.run(["rm", "-rf", str(home)], check=False)


def test_start_stop_and_status_are_idempotent(local_postgres: Factory) -> None:
    server = local_postgres(initdb=True)
    before = server.status()
    assert not before.running and not before.initialised and before.pid is None

    first = server.start()
    second = server.start()
    assert first.running and second.running
    assert first.pid == second.pid
    assert server.status() == second
    assert "running" in "\n".join(second.describe())

    assert server.stop() is True
    assert server.stop() is False
    after = server.status()
    assert not after.running and after.initialised and not after.stale_pid
    _wait_dead(first.pid or 0)


def test_a_restart_keeps_the_data(local_postgres: Factory) -> None:
    server = local_postgres()
    url = server.start().url
    _query(url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    old_pid = server.status().pid
    server.stop()
    restarted = server.start()
    assert restarted.pid != old_pid
    assert _query(url, "SELECT v FROM kept") == [("still here",)]


def test_a_stale_pid_after_kill_9_does_not_prevent_the_next_start(
    local_postgres: Factory,
) -> None:
    server = local_postgres()
    status = server.start()
    _query(status.url, "CREATE TABLE survived (v int); INSERT INTO survived VALUES (42)")
    assert status.pid
    os.kill(status.pid, signal.SIGKILL)
    _wait_dead(status.pid)

    crashed = server.status()
    assert not crashed.running and crashed.stale_pid
    assert (server.data_dir / "postmaster.pid").exists()

    recovered = server.start()
    assert recovered.running and recovered.pid != status.pid
    assert _query(recovered.url, "SELECT v FROM survived") == [(42,)]


def test_a_stale_pid_naming_a_live_unrelated_process_is_cleared(local_postgres: Factory) -> None:
    """After a crash the old pid may belong to a new process of the same user: PostgreSQL's
    own check (kill(pid, 0)) would refuse to start; refarch sees it is not the postmaster."""
    server = local_postgres()
    server.start()
    server.stop()
    owner = ServerUser.from_uid(server.data_dir.stat().st_uid)
    impostor = subprocess.Popen([*run_as_prefix(owner), "sleep", "300"])
    try:
        time.sleep(0.2)
        assert is_alive(impostor.pid)
        pid_file = server.data_dir / "postmaster.pid"
        pid_file.write_text(f"{impostor.pid}\n{server.data_dir}\n0\n{server.port}\n\n\n\nready\n")
        lock = server.socket_dir / f".s.PGSQL.{server.port}.lock"
        lock.write_text(f"{impostor.pid}\n{server.data_dir}\n")
        assert server.status().stale_pid

        status = server.start()
        assert status.running and status.pid != impostor.pid
        assert is_alive(impostor.pid)  # refarch removed the lock files, not the process
    finally:
        impostor.kill()
        impostor.wait()


def test_two_instances_run_side_by_side(local_postgres: Factory) -> None:
    first, second = local_postgres(), local_postgres()
    a, b = first.start(), second.start()
    assert a.pid != b.pid and a.port != b.port and a.socket_dir != b.socket_dir
    _query(a.url, "CREATE TABLE only_in_first (v int)")
    assert _query(b.url, "SELECT to_regclass('only_in_first') IS NULL") == [(True,)]
    first.stop()
    assert second.status().running
    assert _query(b.url, "SELECT 1") == [(1,)]


def test_a_port_in_use_gives_a_clear_error(local_postgres: Factory) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = local_postgres(port=port, tcp=True)
        in_use = rf"port {port} on 127\.0\.0\.1 is already in use"
        with pytest.raises(PostgresRuntimeError, match=in_use):
            server.start()
        assert not server.status().running


def test_a_port_taken_after_the_check_is_reported_from_the_server_log(
    local_postgres: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pre-check can race with another program; PostgreSQL's own failure is then
    translated, with the log's tail attached."""
    monkeypatch.setattr(LocalPostgres, "_check_port_free", lambda self: None)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = local_postgres(port=port, tcp=True)
        with pytest.raises(PostgresRuntimeError) as caught:
            server.start()
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert "last lines of" in message and "Address already in use" in message


def test_a_socket_held_by_another_process_gives_a_clear_error(local_postgres: Factory) -> None:
    server = local_postgres()
    server.start()
    server.stop()
    holder = subprocess.Popen(["sleep", "300"])
    try:
        lock = server.socket_dir / f".s.PGSQL.{server.port}.lock"
        lock.write_text(f"{holder.pid}\n/elsewhere\n")
        held = rf"\.s\.PGSQL\.{server.port} is in use by process {holder.pid}"
        with pytest.raises(PostgresRuntimeError, match=held):
            server.start()
    finally:
        holder.kill()
        holder.wait()


def test_tcp_listens_on_localhost_with_a_password(local_postgres: Factory) -> None:
    server = local_postgres(tcp=True)
    server.start()
    assert _query(server.tcp_url(), "SELECT inet_server_addr()::text") == [("127.0.0.1/32",)]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"host=127.0.0.1 port={server.port} dbname=refarch user=refarch "
                        "password=wrong", connect_timeout=5)


def test_unix_socket_only_by_default(local_postgres: Factory) -> None:
    server = local_postgres()
    server.start()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={server.port} dbname=refarch user=refarch",
                        connect_timeout=5)
    with pytest.raises(PostgresRuntimeError, match="REFARCH_PG_TCP"):
        server.tcp_url()


def test_changing_the_port_of_a_running_server_asks_to_stop_it_first(
    local_postgres: Factory,
) -> None:
    server = local_postgres()
    running = server.start()
    moved = LocalPostgres(server.root, free_port(), durable=False)
    with pytest.raises(PostgresRuntimeError, match="stop it .refarch db stop"):
        moved.start()
    # status reports where the server really listens
    assert moved.status().url == running.url


def test_with_database_url_nothing_is_started(pg_server: LocalPostgres, tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = pg_server.url("postgres")
    settings = Settings(home=home, database_url=url, pg_port=free_port())
    assert database_url(settings) == url
    assert not home.exists()


@ROOT_ONLY
def test_an_unreachable_directory_is_named_in_the_error(local_postgres: Factory,
                                                        tmp_path: Path) -> None:
    """pytest's own temp dirs sit under a mode-700 directory the server user cannot enter."""
    blocked = next(
        p for p in reversed([tmp_path, *tmp_path.parents]) if not p.stat().st_mode & 0o001
    )
    server = local_postgres(root=tmp_path / "home")
    with pytest.raises(PostgresRuntimeError, match=rf"cannot enter {blocked} .*REFARCH_HOME"):
        server.start()


@ROOT_ONLY
def test_as_root_an_unreachable_home_falls_back_to_var_lib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone under /root: the runtime moves to FALLBACK_BASE, linked from REFARCH_HOME."""
    fallback = scratch_dir("refarch-test-fallback-")
    monkeypatch.setattr(server_module, "FALLBACK_BASE", fallback)
    home = tmp_path / "clone" / ".refarch"
    settings = Settings(home=home, pg_port=free_port())
    server = LocalPostgres.from_settings(settings)
    server.durable = False
    try:
        assert server.root.parent == fallback
        status = server.start()
        assert status.running
        link = home / "postgres"
        assert link.is_symlink() and link.resolve() == server.data_dir.resolve()
        found_again = LocalPostgres.from_settings(settings)
        assert found_again.root == server.root and found_again.link is None
        assert found_again.status().pid == status.pid
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(fallback)], check=False)
