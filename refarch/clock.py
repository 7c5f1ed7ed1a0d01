"""Time as a dependency: what the pipeline asks of a clock, and the real one.

The pipeline's timing decisions (how long a batch has been held, when to renew it, how long to
back off, how stale a change is) all go through a :class:`Clock`. Production code uses
:data:`SYSTEM_CLOCK`; tests pass :class:`refarch.fakes.FakeClock`, whose time moves only when
the test says so, so retry and backoff paths run in milliseconds and never race.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """The time-related calls the pipeline makes."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and deadlines)."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware, in UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Pause for ``seconds``."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds pass; returns whether it is set
        (``threading.Event.wait`` used as a sleep that a stop signal interrupts)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`datetime.now`, real sleeps."""

    def monotonic(self) -> float:
        """:func:`time.monotonic`."""
        return time.monotonic()

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """:func:`time.sleep`."""
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """``event.wait(timeout)``."""
        return event.wait(timeout)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock every component uses unless it is given another one. It holds no state.
SYSTEM_CLOCK: Clock = SystemClock()
