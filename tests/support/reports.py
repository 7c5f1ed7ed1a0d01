"""Lines a test wants people to read in the run's output, e.g. what a fault test survived.

A test records one with the ``record_property`` fixture under :data:`SUMMARY_PROPERTY`;
tests/conftest.py prints them after the run with :func:`write_summaries`. (Printing from the
test itself is lost with pytest-xdist, whose workers' output is not shown.)
"""

from __future__ import annotations

import pytest

#: The ``record_property`` name of a line to show after the run.
SUMMARY_PROPERTY = "summary"


def write_summaries(terminal: pytest.TerminalReporter) -> None:
    """Write every recorded summary line, after the test's id, in a section of its own."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminal.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == SUMMARY_PROPERTY
    ]
    if lines:
        terminal.write_sep("=", "test summaries")
        for line in lines:
            terminal.write_line(line)
