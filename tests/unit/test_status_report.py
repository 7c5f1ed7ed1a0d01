"""The typed status report prints the JSON ``refarch status --json`` always printed."""

from __future__ import annotations

import json

from refarch.local.status import (
    LastReconcile,
    ProcessHealth,
    StackState,
    StatusReport,
    format_status,
)

#: The keys of ``refarch status --json`` with everything up, in the order printed.
FULL_KEYS = ["errors", "database_url", "index_host", "stack", "processes", "app_url", "products",
             "outbox_pending", "outbox_oldest_seconds", "queue_visible", "queue_in_flight",
             "dead_letters", "index_vectors", "last_reconcile", "freshness_lag_seconds",
             "postgres", "checked_at"]


def _full_report() -> StatusReport:
    return StatusReport(
        database_url="postgresql:///refarch", stack=StackState(True, "ready", 4242),
        postgres="running", index_host="http://127.0.0.1:5081",
        processes=[ProcessHealth("relay", 4243, True, "running", 1, None),
                   ProcessHealth("app", None, False, "backoff", 3, 1)],
        app_url="http://127.0.0.1:8501", products=10, outbox_pending=2,
        outbox_oldest_seconds=0.5, queue_visible=1, queue_in_flight=0, dead_letters=0,
        index_vectors=9, last_reconcile=LastReconcile("2024-01-01T00:00:00+00:00", 10, 9, 1, 0,
                                                      0, 1, 0),
        freshness_lag_seconds=1.25, checked_at=1700000000.0, errors={"queue": "down"},
    )


def test_a_full_report_has_every_key_in_order() -> None:
    out = _full_report().to_json()
    assert list(out) == FULL_KEYS
    assert out["stack"] == {"running": True, "phase": "ready", "supervisor_pid": 4242}
    assert out["processes"][1] == {"name": "app", "pid": None, "healthy": False,
                                   "state": "backoff", "restarts": 3, "last_exit_code": 1}
    assert out["last_reconcile"] == {"at": "2024-01-01T00:00:00+00:00", "products": 10,
                                     "vectors": 9, "missing": 1, "stale": 0, "orphaned": 0,
                                     "drift": 1, "repaired": 0}
    assert out["errors"] == {"queue": "down"}
    assert json.loads(json.dumps(out)) == out  # JSON-able as it is


def test_app_url_and_checked_at_appear_only_when_known() -> None:
    report = StatusReport(database_url="postgresql:///refarch",
                          stack=StackState(False, "stopped", None), postgres="stopped",
                          errors={"postgres": "the database is not running"})
    out = report.to_json()
    assert list(out) == [k for k in FULL_KEYS if k not in ("app_url", "checked_at")]
    assert out["last_reconcile"] is None and out["processes"] == []


def test_the_text_report_shows_processes_reconcile_and_errors() -> None:
    text = format_status(_full_report())
    assert "stack:           ready (pid 4242)" in text
    assert "last reconcile:  1 (missing 1, stale 0, orphaned 0) at 2024-01-01T00:00:00+00:00" in text
    assert "process relay        up pid 4243, 1 restarts" in text
    assert "process app          backoff, 3 restarts" in text
    assert "app:             http://127.0.0.1:8501" in text
    assert "error (queue): down" in text
