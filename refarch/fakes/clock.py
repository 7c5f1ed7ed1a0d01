"""A clock whose time moves only when a test moves it.

:class:`FakeClock` implements :class:`refarch.clock.Clock`. Its time starts at a fixed instant
and moves when the test calls :meth:`FakeClock.advance`, or when code on the test's thread
sleeps or waits: those return at once, the clock having moved by the time asked for. Code that
waited 30 s of backoff therefore runs in microseconds and always sees exactly 30 s pass.

Other threads (the indexer's heartbeat) are driven by the test's thread: a sleep or wait there
blocks until the test moves time past its deadline. :meth:`advance` moves time from deadline
to deadline in order, waking each due thread and waiting until it comes back to the clock (its
next wait) or ends, so when ``advance(25)`` returns, the heartbeats due at 10 s and 20 s have
run, and nothing races. A thread started with :meth:`FakeClock.start_thread` counts as running
until it first waits, so time cannot move before it is in place. :meth:`call_later` schedules a
callback at a point in fake time (a message that arrives later, an outage that ends).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: Where the fake monotonic clock starts (not 0, so "0 means never" mistakes show up).
DEFAULT_MONOTONIC = 1_000.0
#: Where the fake wall clock starts.
DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
#: Real seconds a woken thread may take to come back to the clock before advance() gives up.
SETTLE_SECONDS = 5.0
# How often (real seconds) a blocked thread looks at the event it waits for: a threading.Event
# cannot tell the clock it was set.
_POLL_SECONDS = 0.0005


@dataclass(order=True)
class _Sleeper:
    """A thread other than the owner, blocked in sleep() or wait() until ``due``."""

    due: float
    seq: int
    thread: threading.Thread = field(compare=False)
    woken: threading.Event = field(compare=False, default_factory=threading.Event)


class FakeClock:
    """Manual time for tests (see the module docstring).

    The thread that creates the clock owns it: there ``sleep`` and ``wait`` move time at once
    (a ``wait`` stops early when its event is set by a callback or by another thread woken on
    the way). Elsewhere they block until the owner moves time past their deadline.
    """

    def __init__(self, start: datetime = DEFAULT_START, *, monotonic: float = DEFAULT_MONOTONIC) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._cond = threading.Condition()
        self._now = float(monotonic)
        self._origin = (float(monotonic), start.astimezone(UTC))
        self._owner = threading.get_ident()
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, Callable[[], object]]] = []
        self._sleepers: dict[int, _Sleeper] = {}
        self._running: set[threading.Thread] = set()

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now().isoformat()}, monotonic={self.monotonic()})"

    # -- reading ----------------------------------------------------------------------------

    def monotonic(self) -> float:
        """Fake seconds since an arbitrary origin."""
        with self._cond:
            return self._now

    def now(self) -> datetime:
        """The fake wall-clock time (UTC), moving with :meth:`monotonic`."""
        with self._cond:
            elapsed = self._now - self._origin[0]
        return self._origin[1] + timedelta(seconds=elapsed)

    # -- moving time ------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running what falls due on the way, in order."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards (advance({seconds}))")
        self._require_owner("advance")
        self._run_until(self.monotonic() + seconds, None)

    def call_later(self, delay: float, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the owner's thread when time reaches now + ``delay``."""
        with self._cond:
            heapq.heappush(self._timers, (self._now + max(delay, 0.0), next(self._seq), callback))

    def sleep(self, seconds: float) -> None:
        """On the owner's thread: move time by ``seconds``. Elsewhere: block until it has."""
        if self._is_owner():
            self._run_until(self.monotonic() + max(seconds, 0.0), None)
        else:
            self._block(None, seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Like ``event.wait(timeout)`` in fake time; returns whether ``event`` is set."""
        if event.is_set():
            return True
        if self._is_owner():
            self._run_until(self.monotonic() + max(timeout, 0.0), event)
            return event.is_set()
        return self._block(event, timeout)

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        """Start a daemon thread on ``target``; time stands still until it waits or ends."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        with self._cond:
            self._running.add(thread)
        thread.start()
        return thread

    # -- the owner's side -------------------------------------------------------------------

    def _is_owner(self) -> bool:
        return threading.get_ident() == self._owner

    def _require_owner(self, what: str) -> None:
        if not self._is_owner():
            raise RuntimeError(f"FakeClock.{what}() must be called from the thread that created the clock")

    def _run_until(self, target: float, event: threading.Event | None) -> None:
        while True:
            self._settle_all()
            timer: Callable[[], object] | None = None
            sleeper: _Sleeper | None = None
            with self._cond:
                next_timer = self._timers[0][0] if self._timers else None
                next_sleeper = min(self._sleepers.values(), default=None)
                sleeper_due = next_sleeper is not None and next_sleeper.due <= target
                # Timers first on a tie: a callback scheduled for 10 s happens before a thread
                # that wakes at 10 s looks around.
                if next_timer is not None and next_timer <= target and (
                    next_sleeper is None or not sleeper_due or next_timer <= next_sleeper.due
                ):
                    due, _, timer = heapq.heappop(self._timers)
                elif next_sleeper is not None and sleeper_due:
                    sleeper = self._sleepers.pop(next_sleeper.seq)
                    due = sleeper.due
                    self._running.add(sleeper.thread)
                    sleeper.woken.set()
                else:
                    self._now = max(self._now, target)
                    return
                self._now = max(self._now, due)
            if timer is not None:
                timer()
            if event is not None and event.is_set():
                return

    def _settle_all(self) -> None:
        """Wait (real time) until every started or woken thread is back at the clock or ended."""
        deadline = time.monotonic() + SETTLE_SECONDS
        with self._cond:
            while True:
                busy = [t for t in self._running if t.is_alive() and t.ident != self._owner]
                if not busy:
                    self._running.clear()
                    return
                if time.monotonic() > deadline:
                    self._running.clear()
                    raise RuntimeError(
                        f"thread {busy[0].name!r} did not wait on the FakeClock again or end within "
                        f"{SETTLE_SECONDS} s of being started or woken (is it blocked on something else?)"
                    )
                self._cond.wait(_POLL_SECONDS * 4)

    # -- the other threads' side ------------------------------------------------------------

    def _block(self, event: threading.Event | None, timeout: float) -> bool:
        me = threading.current_thread()
        with self._cond:
            self._running.discard(me)  # back at the clock: the owner may go on
            self._cond.notify_all()
            if event is not None and event.is_set():
                return True
            if timeout <= 0:
                return event.is_set() if event is not None else False
            sleeper = _Sleeper(self._now + timeout, next(self._seq), me)
            self._sleepers[sleeper.seq] = sleeper
        while not sleeper.woken.wait(_POLL_SECONDS):
            if event is not None and event.is_set():
                # (Had the owner woken us at this moment, it waits until we end or wait
                # again, which is what happens next.)
                with self._cond:
                    self._sleepers.pop(sleeper.seq, None)
                return True
        return event.is_set() if event is not None else False
