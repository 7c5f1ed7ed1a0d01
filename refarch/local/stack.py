"""The local stack behind ``refarch up`` / ``refarch down`` / ``refarch demo``.

``up`` brings up, in order: Postgres (the local server, unless ``DATABASE_URL`` points at one)
with the migrations applied; the local index server (unless ``REFARCH_INDEX=pinecone``); the
initial catalog on first use (10,000 generated products, or ``--csv``/``--generate``); then the
services under a :class:`~refarch.local.supervisor.Supervisor`: the relay, ``K`` indexer workers, the
periodic reconcile and the Streamlit app (see :func:`app_process`, the hook for it). When the
index is empty but Postgres is not (a new index), it backfills. It waits with a progress bar
until the catalog is searchable, then supervises until Ctrl-C or SIGTERM, restarting crashed
processes with backoff and Postgres if it stops, and stops everything it started on the way out.

Files under ``REFARCH_HOME``: ``logs/<process>.log`` (one per process, ``logs/up.log`` for a
detached supervisor) and ``run/stack.json`` (the supervisor's pid, phase and processes; read by
``refarch status`` and ``refarch down``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refarch.errors import RefarchError
from refarch.local.supervisor import ProcessSpec, Supervisor, pid_alive, read_state
from refarch.logs import event
from refarch.redact import redact_url
from refarch.settings import Settings

if TYPE_CHECKING:
    from refarch.domain.product import Product

log = logging.getLogger("refarch.local.stack")

#: Products generated on the first ``up`` when neither --csv nor --generate is given.
DEFAULT_INITIAL_PRODUCTS = 10_000


class StackError(RefarchError):
    """The local stack cannot be started, reached or stopped."""


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its logs and run state."""

    home: Path

    @property
    def logs(self) -> Path:
        """One log file per process."""
        return self.home / "logs"

    @property
    def state_file(self) -> Path:
        """The supervisor's state (pid, phase, processes)."""
        return self.home / "run" / "stack.json"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "refarch.cli", *args]


def embed_threads_per_worker(workers: int) -> int:
    """CPU threads each indexer worker gives the model, so K workers share the cores evenly."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def indexer_processes(settings: Settings, workers: int, prefix: str = "indexer") -> list[ProcessSpec]:
    """``workers`` single-worker indexer processes (used by ``up`` and ``indexer --workers K``)."""
    threads = embed_threads_per_worker(workers)
    return [
        ProcessSpec(
            f"{prefix}-{i}",
            _cli("indexer", "--workers", "1", "--embed-threads", str(threads)),
        )
        for i in range(1, workers + 1)
    ]


def app_process(settings: Settings) -> ProcessSpec | None:
    """The Streamlit app's process: the hook through which ``up`` runs the app.

    Returns None when this install has no app page (``refarch.webapp.runner`` decides).
    """
    try:
        from refarch.webapp.runner import streamlit_command

        return ProcessSpec("app", streamlit_command(settings), stop_timeout=10.0)
    except (ImportError, RefarchError):
        return None


def service_processes(settings: Settings, *, workers: int, with_app: bool) -> list[ProcessSpec]:
    """The supervised services of the local stack, in start order."""
    specs = [ProcessSpec("relay", _cli("relay"))]
    specs += indexer_processes(settings, workers)
    if settings.reconcile_interval > 0:
        specs.append(
            ProcessSpec("reconcile",
                        _cli("reconcile", "--repair", "--every", str(settings.reconcile_interval)))
        )
    if with_app:
        app = app_process(settings)
        if app is not None:
            specs.append(app)
    return specs


#: The supervised services that connect as the database's owner (``DATABASE_URL``): reconcile
#: records its runs in ``reconcile_runs``, which no service role may write. Every other
#: service gets only its own role's URL, as in the cloud, where only the migration task holds
#: the master secret.
OWNER_SERVICES = frozenset({"reconcile"})


def service_env(settings: Settings, admin_url: str) -> dict[str, str]:
    """Environment for every service: each role's URL, no guessing (``DATABASE_URL``, the
    owner's, is added only for :data:`OWNER_SERVICES`, by :func:`with_owner_url`)."""
    from refarch.bootstrap import role_url

    env = {
        "REFARCH_HOME": str(settings.home),
        "REFARCH_APP_DATABASE_URL": role_url(settings, "app", admin_url),
        "REFARCH_RELAY_DATABASE_URL": role_url(settings, "relay", admin_url),
        "REFARCH_INDEXER_DATABASE_URL": role_url(settings, "indexer", admin_url),
        "PYTHONUNBUFFERED": "1",
    }
    return env


def with_owner_url(specs: Iterable[ProcessSpec], admin_url: str) -> list[ProcessSpec]:
    """``specs`` with the owner's ``DATABASE_URL`` given to :data:`OWNER_SERVICES` only."""
    return [
        replace(spec, env={**spec.env, "DATABASE_URL": admin_url})
        if spec.name in OWNER_SERVICES else spec
        for spec in specs
    ]


class LocalStack:
    """One ``refarch up``: start, initialise, supervise, stop (see the module docstring)."""

    def __init__(self, settings: Settings, *, workers: int | None = None, with_app: bool = True,
                 progress: bool = True) -> None:
        self.settings = settings
        self.workers = workers or settings.indexer_workers
        self.with_app = with_app
        self.progress = progress
        self.paths = StackPaths(settings.home)
        self.supervisor: Supervisor | None = None
        self.admin_url: str | None = None
        self._postgres: Any = None
        self._started_postgres = False
        self._phase = "starting"

    # -- phases ---------------------------------------------------------------------------

    def _set_phase(self, phase: str, **extra: Any) -> None:
        self._phase = phase
        if self.supervisor is not None:
            self.supervisor.extra.update({"phase": phase, **extra})
            self.supervisor.write_state()
        event(log, "stack_phase", phase=phase, **extra)

    def start_database(self) -> str:
        """Start the local Postgres (unless DATABASE_URL) and apply the migrations."""
        from refarch.bootstrap import database_url, local_postgres
        from refarch.db.migrations import migrate

        server = local_postgres(self.settings)
        if server is None:
            url = database_url(self.settings)  # DATABASE_URL: nothing to start
        else:
            self._postgres = server
            self._started_postgres = not server.status().running
            url = server.start().url
        self.admin_url = url
        migrate(url)
        return url

    def start_services(self, stop: threading.Event) -> None:
        """Start the index server and the services under a supervisor."""
        from refarch.bootstrap import index_server_process, wait_for_index

        assert self.admin_url is not None
        # The owner's URL (the caller's DATABASE_URL or the local server's) is not inherited.
        base_env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
                    **service_env(self.settings, self.admin_url)}
        specs: list[ProcessSpec] = []
        index_spec = index_server_process(self.settings)
        if index_spec is not None:
            specs.append(index_spec)
        specs += with_owner_url(
            service_processes(self.settings, workers=self.workers, with_app=self.with_app),
            self.admin_url,
        )
        self.supervisor = Supervisor(specs, self.paths.logs, state_file=self.paths.state_file,
                                     base_env=base_env)
        self.supervisor.extra.update({
            "phase": self._phase, "database_url": redact_url(self.admin_url),
            "home": str(self.settings.home),
        })
        if index_spec is not None:
            self.supervisor.start_all_of([index_spec.name])
            self._wait_for_index_server(index_spec.name, stop)
        wait_for_index(self.settings, timeout=300, stop=stop)  # and create the index if missing
        self.supervisor.start_all_of([s.name for s in specs if s is not index_spec])

    def _wait_for_index_server(self, name: str, stop: threading.Event, timeout: float = 300.0) -> None:
        """Wait until the local index server answers; fail fast if it exits (port taken, ...)."""
        from refarch.index.client import local_url
        from refarch.index.process import server_answers

        assert self.supervisor is not None
        url = local_url(self.settings)
        deadline = time.monotonic() + timeout
        while not server_answers(url, timeout=0.5) and not stop.is_set():
            self.supervisor.poll()
            state = self.supervisor.states[name]
            if state.state == "backoff":
                raise StackError(
                    f"the index server exited with code {state.last_exit_code} before it was "
                    f"ready:\n{_tail(self.supervisor.log_path(name), 15)}"
                )
            if time.monotonic() > deadline:
                raise StackError(f"the index server did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.2)

    def load_initial_data(self, csv: str | None, generate: int | None) -> int:
        """Load the initial catalog if the products table is empty; returns rows loaded."""
        from refarch.db.connect import connect, scalar
        from refarch.db.load import load_products

        assert self.admin_url is not None
        with connect(self.admin_url, autocommit=True) as conn:
            count = scalar(conn, "SELECT count(*) FROM products", int)
            if count and csv is None and generate is None:
                return 0
            if count:
                event(log, "initial_data_skipped", reason="products table not empty", products=count)
                return 0
        self._set_phase("loading")
        if csv is not None:
            from refarch.catalog import read_catalog_csv

            read = read_catalog_csv(csv)
            for error in read.errors:
                print(f"rejected line {error.line}: {error.reason}", file=sys.stderr)
            products: Iterable[Product] = read.products
            total = len(read.products)
        else:
            from refarch.catalog import generate_products

            total = generate or DEFAULT_INITIAL_PRODUCTS
            products = generate_products(total, seed=0)
        with connect(self.admin_url) as conn:
            result = load_products(conn, products, batch_size=self.settings.load_batch_size,
                                   total=total, progress=self.progress)
        return result.inserted

    def backfill_if_index_is_new(self) -> int:
        """Backfill when the index is empty but Postgres is not and nothing is in flight."""
        from refarch.bootstrap import make_index, make_queue, role_url
        from refarch.db.connect import connect, scalar
        from refarch.pipeline import outbox
        from refarch.pipeline.backfill import backfill

        assert self.admin_url is not None
        index = make_index(self.settings)
        try:
            vectors = index.count()
        finally:
            _close(index)
        with connect(self.admin_url, autocommit=True) as conn:
            products = scalar(conn, "SELECT count(*) FROM products", int)
            pending = outbox.stats(conn).pending
        if vectors or not products or pending:
            return 0
        self._set_phase("backfilling")
        relay_url = role_url(self.settings, "relay", self.admin_url)
        queue = make_queue(self.settings, relay_url)
        try:
            with connect(relay_url, autocommit=True) as conn:
                return backfill(conn, queue, progress=self.progress).enqueued
        finally:
            queue.close()

    def wait_until_synced(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block (with a progress bar) until everything committed so far is searchable."""
        from refarch.pipeline.progress import wait_for_sync

        assert self.admin_url is not None
        self._set_phase("syncing")
        return wait_for_sync(self.settings, self.admin_url, timeout=timeout, progress=self.progress,
                             stop=stop).synced

    def supervise(self, stop: threading.Event, poll: float = 0.5) -> None:
        """Restart what dies (and Postgres if it stops) until ``stop`` is set."""
        assert self.supervisor is not None
        self._set_phase("running")
        pg_backoff, pg_next = 1.0, 0.0
        last_pg_check = 0.0
        while not stop.wait(poll):
            self.supervisor.poll()
            now = time.monotonic()
            if self._postgres is not None and now - last_pg_check >= 2.0 and now >= pg_next:
                last_pg_check = now
                if not self._postgres.status().running:
                    event(log, "postgres_down", level=logging.WARNING, restart_in=0)
                    try:
                        self._postgres.start()
                        pg_backoff = 1.0
                    except RefarchError as exc:
                        event(log, "postgres_restart_failed", level=logging.WARNING, error=str(exc))
                        pg_next = now + pg_backoff
                        pg_backoff = min(pg_backoff * 2, 30.0)

    def stop(self) -> None:
        """Stop the services, then Postgres if this ``up`` started it."""
        if self.supervisor is not None:
            self._set_phase("stopping")
            self.supervisor.stop_all()
        if self._postgres is not None and self._started_postgres:
            self._postgres.stop()
        if self.supervisor is not None:
            self.supervisor.extra["phase"] = "stopped"
            self.supervisor.write_state()

    # -- the whole run --------------------------------------------------------------------

    def run(self, stop: threading.Event, *, csv: str | None = None, generate: int | None = None,
            on_ready: Callable[[LocalStack], None] | None = None) -> None:
        """``refarch up`` in the foreground: start, initialise, wait for sync, supervise, stop."""
        try:
            self.start_database()
            self.start_services(stop)
            loaded = self.load_initial_data(csv, generate)
            if loaded:
                print(f"refarch up: loaded {loaded} products", file=sys.stderr)
            self.backfill_if_index_is_new()
            if not stop.is_set():
                self.wait_until_synced(stop)
            if not stop.is_set():
                self._set_phase("ready")
                if on_ready is not None:
                    on_ready(self)
                self.supervise(stop)
        finally:
            self.stop()


def _close(resource: Any) -> None:
    close = getattr(resource, "close", None)
    if callable(close):
        close()


def install_stop_signals(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT (Ctrl-C) set ``stop`` instead of killing the process."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# -- detached mode and `refarch down` -----------------------------------------------------------


def running_supervisor(settings: Settings) -> dict[str, Any] | None:
    """The state of a live ``refarch up`` for this REFARCH_HOME, or None."""
    state = read_state(StackPaths(settings.home).state_file)
    if state and pid_alive(state.get("supervisor_pid")) and state.get("phase") not in ("stopped",):
        return state
    return None


def start_detached(settings: Settings, argv: Sequence[str], *, timeout: float = 1800.0,
                   progress: bool = True) -> dict[str, Any]:
    """Run ``refarch up ARGV`` in the background and return once it is ready.

    Raises :class:`StackError` with the tail of its log when it exits before being ready.
    """
    if running_supervisor(settings):
        raise StackError("the local stack is already running (refarch status; refarch down stops it)")
    paths = StackPaths(settings.home)
    paths.logs.mkdir(parents=True, exist_ok=True)
    state_file = paths.state_file
    if state_file.exists():
        state_file.unlink()
    log_path = paths.logs / "up.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            _cli("up", *argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "REFARCH_HOME": str(settings.home)},
        )
    deadline = time.monotonic() + timeout
    last_phase = None
    while time.monotonic() < deadline:
        code = proc.poll()
        state = read_state(state_file) or {}
        phase = state.get("phase")
        if phase != last_phase and phase and progress:
            print(f"refarch up: {phase}", file=sys.stderr, flush=True)
            last_phase = phase
        if phase in ("ready", "running") and state.get("supervisor_pid") == proc.pid:
            return state
        if code is not None:
            raise StackError(f"refarch up exited with code {code} before it was ready:\n{_tail(log_path)}")
        time.sleep(0.5)
    raise StackError(f"refarch up was not ready after {timeout:.0f} s; see {log_path}")


def stop_stack(settings: Settings, timeout: float = 120.0) -> bool:
    """Stop a running ``refarch up`` (SIGTERM, then SIGKILL); returns whether one ran.

    Without a live supervisor, still stops leftover processes named in the state file and the
    local Postgres server.
    """
    paths = StackPaths(settings.home)
    state = read_state(paths.state_file) or {}
    pid = state.get("supervisor_pid")
    was_running = False
    if pid_alive(pid):
        was_running = True
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for proc in state.get("processes", []):
        child = proc.get("pid")
        if pid_alive(child):
            os.kill(child, signal.SIGTERM)
    from refarch.bootstrap import local_postgres

    server = local_postgres(settings)
    if server is not None:
        server.stop()
    return was_running


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
