"""Facts about processes and PostgreSQL's lock files, read from /proc (Linux).

A server killed with ``kill -9`` leaves ``postmaster.pid`` behind, and in containers whose
pid 1 does not reap orphans its pid stays a zombie forever -- and ``kill(pid, 0)``, which
PostgreSQL itself uses to decide whether a lock file is stale, says a zombie is alive. These
helpers tell a live process from a zombie, a dead or a recycled pid.
"""

from __future__ import annotations

from pathlib import Path


def proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[-1].split()[0]


def is_alive(pid: int) -> bool:
    """Alive and not a zombie (a killed server reparented to a non-reaping pid 1 stays one)."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline(pid: int) -> str:
    """The command line of ``pid`` as one string ("" when gone or unreadable)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace"
        ).strip()
    except OSError:
        return ""


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
