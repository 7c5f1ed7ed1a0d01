"""``refarch status``: one look at the whole pipeline, for people (text) and scripts (JSON).

Reports products, outbox pending, queue visible / in flight, dead letters, index vectors, the
last reconcile's drift, the freshness lag, the health of the supervised processes, and how to
connect: ``database_url`` (a libpq URL, its password shown as ``***``) and ``index_host`` (the
data-plane URL the Pinecone SDK takes). It never starts anything: a part that is down is
reported as such. No figure or error in a report holds a password (``refarch db url`` prints
the URL to connect with).

:func:`collect_status` returns a :class:`StatusReport`; :meth:`StatusReport.to_json` is what
``refarch status --json`` prints and :func:`format_status` what ``refarch status`` prints.

On the local queue the report also has the age of the oldest message and dead letter, and a
warning (``warnings``) once either reaches :data:`RETENTION_WARN_FRACTION` of its retention,
before anything is dropped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from refarch.local.supervisor import pid_alive, read_state
from refarch.redact import redact_url
from refarch.settings import Settings

#: Warn when the oldest message (or dead letter) has used this much of its retention.
RETENTION_WARN_FRACTION = 0.75


@dataclass(frozen=True)
class StackState:
    """The supervisor of ``refarch up``: whether it runs, its phase and pid."""

    running: bool
    phase: str | None
    supervisor_pid: int | None


@dataclass(frozen=True)
class ProcessHealth:
    """One supervised process as the state file and the OS (psutil) show it."""

    name: str
    pid: int | None
    healthy: bool
    state: str | None
    restarts: int
    last_exit_code: int | None


@dataclass(frozen=True)
class LastReconcile:
    """The latest reconcile run: what it compared, found and repaired."""

    at: str
    products: int
    vectors: int
    missing: int
    stale: int
    orphaned: int
    drift: int
    repaired: int


@dataclass
class StatusReport:
    """Every figure of the status panel; unreachable parts are ``None`` with an ``errors`` entry."""

    #: The owner's URL with its password redacted.
    database_url: str
    stack: StackState
    postgres: str  # running | stopped
    index_host: str | None = None
    processes: list[ProcessHealth] = field(default_factory=list)
    #: Set when the stack supervises the app.
    app_url: str | None = None
    products: int | None = None
    outbox_pending: int | None = None
    outbox_oldest_seconds: float | None = None
    queue_visible: int | None = None
    queue_in_flight: int | None = None
    dead_letters: int | None = None
    #: Local queue only: seconds since the oldest message was sent / dead-lettered.
    queue_oldest_seconds: float | None = None
    dead_letter_oldest_seconds: float | None = None
    index_vectors: int | None = None
    last_reconcile: LastReconcile | None = None
    freshness_lag_seconds: float | None = None
    #: When the figures were read (``time.time()``); ``None`` when the database was down.
    checked_at: float | None = None
    #: Part (``postgres``, ``index``, ``index_host``, ``queue``, ``queue_retention``) -> what
    #: went wrong.
    errors: dict[str, str] = field(default_factory=dict)
    #: Things that still work but soon will not (messages about to expire).
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as ``refarch status --json`` prints it (the keys scripts and tests read).

        ``app_url`` is present only when the stack runs the app, ``checked_at`` only when the
        database was up.
        """
        out: dict[str, Any] = {
            "errors": dict(self.errors),
            "warnings": list(self.warnings),
            "database_url": self.database_url,
            "index_host": self.index_host,
            "stack": asdict(self.stack),
            "processes": [asdict(p) for p in self.processes],
        }
        if self.app_url is not None:
            out["app_url"] = self.app_url
        out.update({
            "products": self.products,
            "outbox_pending": self.outbox_pending,
            "outbox_oldest_seconds": self.outbox_oldest_seconds,
            "queue_visible": self.queue_visible,
            "queue_in_flight": self.queue_in_flight,
            "dead_letters": self.dead_letters,
            "queue_oldest_seconds": self.queue_oldest_seconds,
            "dead_letter_oldest_seconds": self.dead_letter_oldest_seconds,
            "index_vectors": self.index_vectors,
            "last_reconcile": asdict(self.last_reconcile) if self.last_reconcile else None,
            "freshness_lag_seconds": self.freshness_lag_seconds,
            "postgres": self.postgres,
        })
        if self.checked_at is not None:
            out["checked_at"] = self.checked_at
        return out


def _database_url(settings: Settings) -> tuple[str, bool]:
    """The owner URL and whether the server is up (the local one is not started)."""
    from refarch.bootstrap import local_postgres

    server = local_postgres(settings)
    if server is None:
        assert settings.database_url
        return settings.database_url, True
    status = server.status()
    return status.url, status.running


def _stack_and_processes(settings: Settings) -> tuple[StackState, list[ProcessHealth]]:
    """What the supervisor's state file says, checked against the running processes."""
    from refarch.local.stack import StackPaths

    state = read_state(StackPaths(settings.home).state_file) or {}
    running = pid_alive(state.get("supervisor_pid"))
    stack = StackState(
        running=running,
        phase=state.get("phase") if running else "stopped",
        supervisor_pid=state.get("supervisor_pid") if running else None,
    )
    processes = []
    for proc in state.get("processes", []):
        alive = running and pid_alive(proc.get("pid"))
        processes.append(ProcessHealth(
            name=proc["name"], pid=proc.get("pid") if alive else None, healthy=alive,
            state=proc.get("state") if running else "stopped",
            restarts=proc.get("restarts", 0), last_exit_code=proc.get("last_exit_code"),
        ))
    return stack, processes


def collect_status(settings: Settings, database_url: str | None = None) -> StatusReport:
    """Every figure of the status panel; unreachable parts give ``None`` and an ``errors`` entry.

    ``database_url`` is the URL to read the figures with (the app's panel gives its own role's:
    the products count, ``outbox_stats()``, ``reconcile_runs`` and the queue's counts are open
    to it); by default the owner's, as ``refarch status`` reads them.
    """
    if database_url is None:
        url, db_up = _database_url(settings)
    else:
        url, db_up = database_url, True
    stack, processes = _stack_and_processes(settings)
    report = StatusReport(database_url=redact_url(url), stack=stack, processes=processes,
                          postgres="running" if db_up else "stopped")
    try:
        _collect(settings, report, url, db_up)
    finally:
        # Errors quote what failed, which may be a URL with its password.
        report.errors = {part: redact_url(error) for part, error in report.errors.items()}
    return report


def _collect(settings: Settings, report: StatusReport, url: str, db_up: bool) -> None:
    """Fill in ``report`` (see :func:`collect_status`)."""
    from refarch.bootstrap import index_host, make_index, make_queue
    from refarch.db.connect import scalar
    from refarch.pipeline import outbox
    from refarch.pipeline.progress import freshness_lag
    from refarch.pipeline.reconcile import last_report

    try:
        report.index_host = index_host(settings)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        report.errors["index_host"] = str(exc)
    if any(p.name == "app" for p in report.processes):
        from refarch.webapp.runner import app_url

        report.app_url = app_url(settings)

    if not db_up:
        report.errors["postgres"] = "the database is not running (refarch up starts it)"
        return

    index = None
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            report.products = scalar(conn, "SELECT count(*) FROM products", int)
            stats = outbox.stats(conn)
            report.outbox_pending = stats.pending
            if stats.oldest is not None:
                now = scalar(conn, "SELECT now()", datetime)
                report.outbox_oldest_seconds = round((now - stats.oldest).total_seconds(), 3)
            last = last_report(conn)
            report.last_reconcile = LastReconcile(**last) if last is not None else None
            try:
                index = make_index(settings)
                report.index_vectors = index.count()
                report.freshness_lag_seconds = freshness_lag(conn, index)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                report.errors["index"] = str(exc)
    except psycopg.Error as exc:
        report.errors["postgres"] = str(exc).strip()
    finally:
        if index is not None:
            index.close()
    try:
        queue = make_queue(settings, url)
        try:
            qs = queue.stats()
            report.queue_visible, report.queue_in_flight, report.dead_letters = (
                qs.visible, qs.in_flight, qs.dead,
            )
            _retention(settings, report, queue)
        finally:
            queue.close()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        report.errors["queue"] = str(exc)
    report.checked_at = time.time()


def format_status(report: StatusReport) -> str:
    """The report as aligned ``key: value`` lines."""
    def show(value: object) -> str:
        return "-" if value is None else str(value)

    reconcile = report.last_reconcile
    drift = "never run" if not reconcile else (
        f"{reconcile.drift} (missing {reconcile.missing}, stale {reconcile.stale}, "
        f"orphaned {reconcile.orphaned}) at {reconcile.at}"
    )
    stack = report.stack
    lines = [
        f"stack:           {stack.phase}"
        + (f" (pid {stack.supervisor_pid})" if stack.running else ""),
        f"postgres:        {report.postgres}",
        f"database_url:    {report.database_url}",
        f"index_host:      {show(report.index_host)}",
        f"products:        {show(report.products)}",
        f"index vectors:   {show(report.index_vectors)}",
        f"outbox pending:  {show(report.outbox_pending)}",
        f"queue:           visible {show(report.queue_visible)}, "
        f"in flight {show(report.queue_in_flight)}",
        f"dead letters:    {show(report.dead_letters)}",
        f"freshness lag:   {show(report.freshness_lag_seconds)} s",
        f"last reconcile:  {drift}",
    ]
    if report.app_url:
        lines.append(f"app:             {report.app_url}")
    for proc in report.processes:
        health = "up" if proc.healthy else proc.state
        lines.append(
            f"process {proc.name:<12} {health}"
            + (f" pid {proc.pid}" if proc.pid else "")
            + (f", {proc.restarts} restarts" if proc.restarts else "")
        )
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    for part, error in report.errors.items():
        lines.append(f"error ({part}): {error}")
    return "\n".join(lines)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _days(seconds: float) -> str:
    return f"{seconds / 86_400:.1f} days" if seconds >= 86_400 else f"{seconds:.0f} s"


def retention_warnings(settings: Settings, oldest_message_seconds: float | None,
                       oldest_dead_letter_seconds: float | None) -> list[str]:
    """A warning for the queue and one for the DLQ whose oldest entry has used at least
    :data:`RETENTION_WARN_FRACTION` of its retention (``REFARCH_QUEUE_RETENTION_SECONDS``,
    ``REFARCH_DLQ_RETENTION_SECONDS``)."""
    warnings = []
    checks = (
        ("queue", "message", oldest_message_seconds, settings.queue_retention_seconds,
         "REFARCH_QUEUE_RETENTION_SECONDS",
         "is the indexer running? A dropped change stays missing from the index until "
         "`refarch reconcile --repair`"),
        ("dead-letter queue", "dead letter", oldest_dead_letter_seconds,
         settings.dlq_retention_seconds, "REFARCH_DLQ_RETENTION_SECONDS",
         "fix the cause and redrive the dead letters before they are dropped"),
    )
    for where, what, age, retention, variable, advice in checks:
        if age is None or age < RETENTION_WARN_FRACTION * retention:
            continue
        left = retention - age
        when = f"expires in {_days(left)}" if left > 0 else "has expired (dropped at the next receive)"
        warnings.append(
            f"{where}: the oldest {what} is {_days(age)} old and {when}; {what}s are kept "
            f"{_days(retention)} ({variable}={retention}): {advice}"
        )
    return warnings


def _retention(settings: Settings, report: StatusReport, queue: object) -> None:
    """The local queue's oldest ages and retention warnings (SQS keeps its ages in CloudWatch)."""
    from refarch.queue.local import PostgresQueue

    if not isinstance(queue, PostgresQueue):
        return
    try:
        ages = queue.ages()
    except Exception as exc:  # noqa: BLE001 - reported, not raised; the counts stand
        report.errors["queue_retention"] = str(exc)
        return
    report.queue_oldest_seconds = _rounded(ages.oldest_message_seconds)
    report.dead_letter_oldest_seconds = _rounded(ages.oldest_dead_letter_seconds)
    report.warnings += retention_warnings(settings, *ages)
