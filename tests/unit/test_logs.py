from __future__ import annotations

import io
import logging
import sys

import pytest

from refarch.logs import configure, event, format_event


def test_format_event_quotes_values_with_spaces() -> None:
    line = format_event("batch_indexed", count=64, seconds=0.4123, note="two words")
    assert line == 'event=batch_indexed count=64 seconds=0.412 note="two words"'


def test_logs_follow_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    configure("INFO")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    event(logging.getLogger("refarch.test"), "one", count=1)
    monkeypatch.setattr(sys, "stderr", second)
    first.close()  # a handler bound to the first stream would now fail
    event(logging.getLogger("refarch.test"), "two", count=2)
    assert "event=two count=2" in second.getvalue()
