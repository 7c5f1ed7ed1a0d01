"""Structured logs: one event per line, ``key=value`` pairs, with counts and timings.

Services call :func:`configure` once at start-up and :func:`event` for each thing worth
recording, e.g. ``event(log, "batch_indexed", count=64, seconds=0.41)`` logs
``event=batch_indexed count=64 seconds=0.410``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from refarch.redact import redact_url


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
    else:
        text = str(value)
    if text == "" or any(c.isspace() or c in '="' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def format_event(name: str, **fields: Any) -> str:
    """Render an event as one ``key=value`` line (values with spaces are quoted)."""
    parts = [f"event={_format_value(name)}"]
    parts.extend(f"{key}={_format_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event line on ``logger``."""
    if logger.isEnabledFor(level):
        logger.log(level, format_event(name, **fields))


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of each record, not at set-up.

    (pytest's capture and notebooks swap ``sys.stderr``; a handler bound to the old one would
    write to a closed file.)
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # the base class assigns it; always use sys.stderr
        pass


class RedactingFormatter(logging.Formatter):
    """A formatter whose lines (message, arguments and traceback alike) show no password of a
    URL or conninfo (:func:`refarch.redact.redact_url`)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send refarch's logs to ``stream`` (default: the current stderr) as key=value lines,
    passwords redacted."""
    handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    handler.setFormatter(
        RedactingFormatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    )
    root = logging.getLogger("refarch")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
