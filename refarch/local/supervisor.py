"""Run a set of child processes, restart the ones that die (with backoff), stop them all.

Used by ``refarch up`` (the local stack) and by ``refarch indexer --workers K`` (a pool of
indexer processes). Each child:

* writes stdout and stderr to ``LOG_DIR/<name>.log`` (appended across restarts);
* is named ``refarch-<name>`` to PostgreSQL (``PGAPPNAME``, the ``application_name`` of its
  connections), so ``pg_stat_activity`` shows which process holds which connection;
* runs in its own session, so a Ctrl-C in the terminal reaches only the supervisor, which then
  stops the children in reverse start order with SIGTERM (SIGKILL after a grace period);
* gets SIGTERM from the kernel if the supervisor itself dies, even by ``kill -9``
  (``PR_SET_PDEATHSIG``), so no orphan keeps running.

A child that exits is started again after a backoff that doubles with each quick failure
(1 s, 2 s, 4 s ... up to 30 s) and resets once it has run for a minute. The supervisor's view
(pids, restarts, state) is written to a JSON state file that ``refarch status`` reads.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from refarch.db.processes import is_alive
from refarch.logs import event

log = logging.getLogger("refarch.local.supervisor")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # Linux only (WSL2 included). On macOS there is no equivalent: the supervisor's own
    # shutdown stops its children, and after a kill -9 of it `refarch down` stops them from
    # the state file.
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # a libc without that name (musl): the same fallback as macOS


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: a name, its command, extra environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    #: Seconds to wait after SIGTERM before SIGKILL.
    stop_timeout: float = 20.0


@dataclass
class ProcessState:
    """What the supervisor knows about one process (serialised into the state file)."""

    name: str
    pid: int | None = None
    state: str = "new"  # running | backoff | stopped
    restarts: int = 0
    started_at: float | None = None
    last_exit_code: int | None = None
    next_start_at: float | None = None


class Supervisor:
    """Start, watch, restart and stop :class:`ProcessSpec`\\ s."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        log_dir: Path,
        *,
        state_file: Path | None = None,
        base_env: Mapping[str, str] | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        self.specs = list(specs)
        self.log_dir = log_dir
        self.state_file = state_file
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.states = {spec.name: ProcessState(spec.name) for spec in self.specs}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._failures: dict[str, int] = {spec.name: 0 for spec in self.specs}
        self.extra: dict[str, Any] = {}

    def log_path(self, name: str) -> Path:
        """Where process ``name`` logs."""
        return self.log_dir / f"{name}.log"

    # -- lifecycle ------------------------------------------------------------------------

    def _spawn(self, spec: ProcessSpec) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(spec.name), "ab") as out:
            proc = subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.base_env, "PGAPPNAME": f"refarch-{spec.name}", **spec.env},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._procs[spec.name] = proc
        state = self.states[spec.name]
        state.pid, state.state, state.started_at, state.next_start_at = proc.pid, "running", time.time(), None
        event(log, "process_started", process=spec.name, pid=proc.pid)

    def start_all(self) -> None:
        """Start every process, in order."""
        self.start_all_of([spec.name for spec in self.specs])

    def start_all_of(self, names: Sequence[str]) -> None:
        """Start the named processes (in spec order); the others stay ``new`` until started."""
        wanted = set(names)
        for spec in self.specs:
            if spec.name in wanted and self.states[spec.name].state in ("new", "stopped"):
                self._spawn(spec)
        self.write_state()

    def poll(self) -> None:
        """One pass: notice exits, schedule and perform restarts, write the state file."""
        now = time.time()
        for spec in self.specs:
            state = self.states[spec.name]
            proc = self._procs.get(spec.name)
            if state.state == "running" and proc is not None:
                code = proc.poll()
                if code is None:
                    continue
                ran = now - (state.started_at or now)
                if ran >= self.stable_after:
                    self._failures[spec.name] = 0
                self._failures[spec.name] += 1
                delay = min(self.backoff_max, self.backoff_initial * 2 ** (self._failures[spec.name] - 1))
                state.state, state.last_exit_code, state.pid = "backoff", code, None
                state.next_start_at = now + delay
                event(log, "process_exited", level=logging.WARNING, process=spec.name, code=code,
                      ran_seconds=ran, restart_in=delay)
            if state.state == "backoff" and state.next_start_at is not None and now >= state.next_start_at:
                state.restarts += 1
                self._spawn(spec)
        self.write_state()

    def stop_all(self) -> None:
        """SIGTERM every process (reverse order), wait, SIGKILL what is left."""
        running = [(s, self._procs[s.name]) for s in reversed(self.specs)
                   if s.name in self._procs and self._procs[s.name].poll() is None]
        for _spec, proc in running:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        for spec, proc in running:
            try:
                proc.wait(timeout=spec.stop_timeout)
            except subprocess.TimeoutExpired:
                event(log, "process_killed", level=logging.WARNING, process=spec.name, pid=proc.pid)
                proc.kill()
                proc.wait(timeout=10)
        for spec in self.specs:
            state = self.states[spec.name]
            last = self._procs.get(spec.name)
            state.state, state.pid = "stopped", None
            if last is not None:
                state.last_exit_code = last.returncode
        self.write_state()

    def wait_for_log(self, name: str, text: str, timeout: float = 300.0) -> bool:
        """Wait until process ``name``'s log contains ``text`` (e.g. a ready event)."""
        deadline = time.monotonic() + timeout
        path = self.log_path(name)
        while time.monotonic() < deadline:
            self.poll()
            try:
                if text in path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def pid(self, name: str) -> int | None:
        """The current pid of process ``name`` (None while it is not running)."""
        return self.states[name].pid

    # -- state file -----------------------------------------------------------------------

    def write_state(self) -> None:
        """Write the state file (atomically) if one was given."""
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "supervisor_pid": os.getpid(),
            "updated_at": time.time(),
            "processes": [asdict(self.states[s.name]) for s in self.specs],
            **self.extra,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, self.state_file)


def read_state(state_file: Path) -> dict[str, Any] | None:
    """The state file's content, or None when there is none (or it is unreadable)."""
    try:
        content = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def pid_alive(pid: int | None) -> TypeGuard[int]:
    """Whether a process with this pid exists (and is not a zombie)."""
    return pid is not None and pid > 0 and is_alive(pid)
