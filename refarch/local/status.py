"""``refarch status``: one look at the whole pipeline, for people (text) and scripts (JSON).

Reports products, outbox pending, queue visible / in flight, dead letters, index vectors, the
last reconcile's drift, the freshness lag, the health of the supervised processes, and how to
connect: ``database_url`` (a libpq URL) and ``index_host`` (the data-plane URL the Pinecone SDK
takes). It never starts anything: a part that is down is reported as such.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from refarch.local.supervisor import pid_alive, read_state
from refarch.settings import Settings


def _database_url(settings: Settings) -> tuple[str, bool]:
    """The owner URL and whether the server is up (the local one is not started)."""
    if settings.database_url:
        return settings.database_url, True
    from refarch.db.server import LocalPostgres

    server = LocalPostgres.from_settings(settings)
    status = server.status()
    return status.url, status.running


def collect_status(settings: Settings) -> dict[str, Any]:
    """Every figure of the status panel; unreachable parts give ``None`` and an ``errors`` entry."""
    from refarch.bootstrap import index_host, make_index, make_queue
    from refarch.local.stack import StackPaths
    from refarch.pipeline import outbox
    from refarch.pipeline.progress import freshness_lag
    from refarch.pipeline.reconcile import last_report

    report: dict[str, Any] = {"errors": {}}
    url, db_up = _database_url(settings)
    report["database_url"] = url
    report["index_host"] = None
    try:
        report["index_host"] = index_host(settings)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        report["errors"]["index_host"] = str(exc)

    state = read_state(StackPaths(settings.home).state_file) or {}
    supervisor_alive = pid_alive(state.get("supervisor_pid"))
    report["stack"] = {
        "running": supervisor_alive,
        "phase": state.get("phase") if supervisor_alive else "stopped",
        "supervisor_pid": state.get("supervisor_pid") if supervisor_alive else None,
    }
    processes = []
    for proc in state.get("processes", []):
        alive = supervisor_alive and pid_alive(proc.get("pid"))
        processes.append({
            "name": proc["name"], "pid": proc.get("pid") if alive else None,
            "healthy": alive, "state": proc.get("state") if supervisor_alive else "stopped",
            "restarts": proc.get("restarts", 0), "last_exit_code": proc.get("last_exit_code"),
        })
    report["processes"] = processes
    if any(p["name"] == "app" for p in processes):
        from refarch.webapp.runner import app_url

        report["app_url"] = app_url(settings)

    for key in ("products", "outbox_pending", "outbox_oldest_seconds", "queue_visible",
                "queue_in_flight", "dead_letters", "index_vectors", "last_reconcile",
                "freshness_lag_seconds"):
        report[key] = None
    report["postgres"] = "running" if db_up else "stopped"
    if not db_up:
        report["errors"]["postgres"] = "the database is not running (refarch up starts it)"
        return report

    index = None
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            report["products"] = conn.execute("SELECT count(*) FROM products").fetchone()[0]  # type: ignore[index]
            stats = outbox.stats(conn)
            report["outbox_pending"] = stats.pending
            if stats.oldest is not None:
                now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
                report["outbox_oldest_seconds"] = round((now - stats.oldest).total_seconds(), 3)
            report["last_reconcile"] = last_report(conn)
            try:
                index = make_index(settings)
                report["index_vectors"] = index.count()
                report["freshness_lag_seconds"] = freshness_lag(conn, index)
            except Exception as exc:  # noqa: BLE001
                report["errors"]["index"] = str(exc)
    except psycopg.Error as exc:
        report["errors"]["postgres"] = str(exc).strip()
    finally:
        if index is not None:
            index.close()
    try:
        queue = make_queue(settings, url)
        try:
            qs = queue.stats()
            report["queue_visible"], report["queue_in_flight"], report["dead_letters"] = (
                qs.visible, qs.in_flight, qs.dead,
            )
        finally:
            queue.close()
    except Exception as exc:  # noqa: BLE001
        report["errors"]["queue"] = str(exc)
    report["checked_at"] = time.time()
    return report


def format_status(report: dict[str, Any]) -> str:
    """The report as aligned ``key: value`` lines."""
    def show(value: Any) -> str:
        return "-" if value is None else str(value)

    reconcile = report.get("last_reconcile")
    drift = "never run" if not reconcile else (
        f"{reconcile['drift']} (missing {reconcile['missing']}, stale {reconcile['stale']}, "
        f"orphaned {reconcile['orphaned']}) at {reconcile['at']}"
    )
    lines = [
        f"stack:           {report['stack']['phase']}"
        + (f" (pid {report['stack']['supervisor_pid']})" if report["stack"]["running"] else ""),
        f"postgres:        {report.get('postgres')}",
        f"database_url:    {report['database_url']}",
        f"index_host:      {show(report.get('index_host'))}",
        f"products:        {show(report['products'])}",
        f"index vectors:   {show(report['index_vectors'])}",
        f"outbox pending:  {show(report['outbox_pending'])}",
        f"queue:           visible {show(report['queue_visible'])}, "
        f"in flight {show(report['queue_in_flight'])}",
        f"dead letters:    {show(report['dead_letters'])}",
        f"freshness lag:   {show(report['freshness_lag_seconds'])} s",
        f"last reconcile:  {drift}",
    ]
    if report.get("app_url"):
        lines.append(f"app:             {report['app_url']}")
    for proc in report["processes"]:
        health = "up" if proc["healthy"] else proc["state"]
        lines.append(
            f"process {proc['name']:<12} {health}"
            + (f" pid {proc['pid']}" if proc["pid"] else "")
            + (f", {proc['restarts']} restarts" if proc["restarts"] else "")
        )
    for part, error in report.get("errors", {}).items():
        lines.append(f"error ({part}): {error}")
    return "\n".join(lines)
