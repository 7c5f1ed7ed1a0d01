"""The typed status report prints the JSON ``refarch status --json`` always printed."""

from __future__ import annotations

import json

from refarch.local.status import (
    LastReconcile,
    ProcessHealth,
    StackState,
    StatusReport,
    format_status,
    retention_warnings,
)
from refarch.settings import Settings

DAY = 86_400

#: The keys of ``refarch status --json`` with everything up, in the order printed.
FULL_KEYS = ["errors", "warnings", "database_url", "index_host", "stack", "processes", "app_url",
             "products", "outbox_pending", "outbox_oldest_seconds", "queue_visible",
             "queue_in_flight", "dead_letters", "queue_oldest_seconds",
             "dead_letter_oldest_seconds", "index_vectors", "last_reconcile", "freshness_lag_seconds",
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
        queue_oldest_seconds=12.5, dead_letter_oldest_seconds=None,
        warnings=["queue: the oldest message is old"],
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
    assert out["warnings"] == ["queue: the oldest message is old"]
    assert (out["queue_oldest_seconds"], out["dead_letter_oldest_seconds"]) == (12.5, None)
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
    assert "warning: queue: the oldest message is old" in text


def test_no_retention_warning_below_75_percent_or_when_empty() -> None:
    settings = Settings.from_env({})  # 4 days for the queue, 14 for the DLQ
    assert retention_warnings(settings, None, None) == []
    assert retention_warnings(settings, 2.99 * DAY, 10.49 * DAY) == []


def test_the_queue_warns_at_75_percent_of_its_retention_naming_the_setting() -> None:
    settings = Settings.from_env({})
    (warning,) = retention_warnings(settings, 3 * DAY, None)
    assert warning.startswith("queue: the oldest message is 3.0 days old and expires in 1.0 days;")
    assert "REFARCH_QUEUE_RETENTION_SECONDS=345600" in warning
    assert "reconcile --repair" in warning


def test_the_dlq_warns_on_its_own_retention() -> None:
    settings = Settings.from_env({"REFARCH_DLQ_RETENTION_SECONDS": "3600"})
    (warning,) = retention_warnings(settings, 60.0, 2700.0)  # 75% of an hour
    assert warning.startswith("dead-letter queue: the oldest dead letter is 2700 s old and "
                              "expires in 900 s;")
    assert "REFARCH_DLQ_RETENTION_SECONDS=3600" in warning and "redrive" in warning


def test_an_overdue_message_is_reported_as_expired() -> None:
    settings = Settings.from_env({"REFARCH_QUEUE_RETENTION_SECONDS": "600"})
    warnings = retention_warnings(settings, 650.0, 30 * DAY)
    assert len(warnings) == 2
    assert "650 s old and has expired (dropped at the next receive)" in warnings[0]
    assert "30.0 days old and has expired" in warnings[1]
