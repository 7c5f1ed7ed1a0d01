"""Facts about processes and PostgreSQL's lock files, through psutil (Linux, macOS, WSL2).

A server killed with ``kill -9`` leaves ``postmaster.pid`` behind, and in containers whose
pid 1 does not reap orphans its pid stays a zombie forever -- and ``kill(pid, 0)``, which
PostgreSQL itself uses to decide whether a lock file is stale, says a zombie is alive. These
helpers tell a live process from a zombie, a dead or a recycled pid. The one module that
asks the OS about other processes: the runtime and the supervisor both use it.
"""

from __future__ import annotations

from pathlib import Path

import psutil


def proc_state(pid: int) -> str | None:
    """psutil's status of ``pid`` (``"running"``, ``"sleeping"``, ``"zombie"`` ...), None when
    there is no such process, ``"?"`` when it cannot be read."""
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return "?"


def is_alive(pid: int) -> bool:
    """Alive and not a zombie (a killed server reparented to a non-reaping pid 1 stays one)."""
    state = proc_state(pid)
    return state is not None and state not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def cmdline(pid: int) -> str:
    """The command line of ``pid`` as one string (its title, for a PostgreSQL backend; "" when
    gone or unreadable)."""
    try:
        return " ".join(psutil.Process(pid).cmdline()).strip()
    except psutil.Error:
        return ""


def working_directory(pid: int) -> str | None:
    """The current directory of ``pid``, or None when gone or another user's (not readable)."""
    try:
        return str(psutil.Process(pid).cwd())
    except psutil.Error:
        return None


def pids_titled(prefix: str) -> list[int]:
    """Live processes whose command line (title) starts with ``prefix``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        title = " ".join(process.info.get("cmdline") or [])
        if title.startswith(prefix) and is_alive(process.pid):
            found.append(process.pid)
    return found


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a PostgreSQL lock file, or None (missing, unreadable)."""
    try:
        first = path.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    try:
        return abs(int(first))  # a negative pid marks a single-user backend
    except ValueError:
        return None


def pid_file_fields(path: Path) -> list[str]:
    """Lines of ``postmaster.pid``: pid, data dir, start time, port, socket dir, listen
    address, shared memory key, state (see PostgreSQL's pidfile.h)."""
    try:
        return [line.strip() for line in path.read_text().splitlines()]
    except OSError:
        return []
