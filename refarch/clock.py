"""Time as a dependency: what the pipeline asks of a clock, and the real one.

The pipeline's timing decisions (how long a batch has been held, when to renew it, how long to
back off, how stale a change is) all go through a :class:`Clock`, and so does the one thread
that keeps time of its own (the indexer's heartbeat). Production code uses
:data:`SYSTEM_CLOCK`; tests pass :class:`refarch.fakes.FakeClock`, whose time moves only when
the test says so, so retry and backoff paths run in milliseconds and never race.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a daemon thread running ``target``, whose sleeps and waits use this clock (a
        fake clock then knows to let it reach its first wait before moving time)."""
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

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """A started daemon ``threading.Thread``."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock every component uses unless it is given another one. It holds no state.
SYSTEM_CLOCK: Clock = SystemClock()
