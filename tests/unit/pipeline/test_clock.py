"""The clocks the pipeline runs on: SystemClock is the real one; FakeClock moves only on demand,
drives other threads' waits deterministically, and runs scheduled callbacks in time order."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from refarch.clock import SYSTEM_CLOCK, Clock, SystemClock
from refarch.fakes import FakeClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock) and isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)
    assert SYSTEM_CLOCK.now().tzinfo is UTC
    assert abs(SYSTEM_CLOCK.monotonic() - time.monotonic()) < 1
    assert SYSTEM_CLOCK.wait(threading.Event(), 0) is False


def test_fake_time_moves_only_when_asked_and_sleeps_return_at_once() -> None:
    clock = FakeClock(datetime(2030, 5, 1, tzinfo=UTC), monotonic=50.0)
    assert (clock.monotonic(), clock.now()) == (50.0, datetime(2030, 5, 1, tzinfo=UTC))
    started = time.perf_counter()
    clock.sleep(3600)
    clock.advance(0.5)
    assert time.perf_counter() - started < 1
    assert clock.monotonic() == 3650.5
    assert clock.now() == datetime(2030, 5, 1, tzinfo=UTC) + timedelta(seconds=3600.5)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        FakeClock(datetime(2030, 5, 1))


def test_callbacks_run_in_time_order_and_a_wait_ends_when_its_event_is_set() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    seen: list[tuple[str, float]] = []
    stop = threading.Event()
    clock.call_later(5, lambda: seen.append(("b", clock.monotonic() - start)))
    clock.call_later(2, lambda: seen.append(("a", clock.monotonic() - start)))
    clock.call_later(7, stop.set)
    clock.call_later(9, lambda: seen.append(("late", clock.monotonic() - start)))
    assert clock.wait(stop, 60) is True
    assert seen == [("a", 2), ("b", 5)] and clock.monotonic() - start == 7
    assert clock.wait(threading.Event(), 1) is False and seen[-1] == ("b", 5)
    clock.advance(1)
    assert seen[-1] == ("late", 9)


def test_another_thread_waits_until_the_owner_moves_time_and_runs_before_advance_returns() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    stop = threading.Event()
    beats: list[float] = []

    def heartbeat() -> None:
        while not clock.wait(stop, 10):
            beats.append(clock.monotonic() - start)

    thread = clock.start_thread(heartbeat, "beat")
    time.sleep(0.05)  # real time passes; fake time does not
    assert beats == []
    clock.advance(25)
    assert beats == [10, 20]  # both done by the time advance returned
    clock.sleep(10)
    assert beats == [10, 20, 30]
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    clock.advance(100)
    assert beats == [10, 20, 30]


def test_other_threads_may_not_advance_the_clock() -> None:
    clock = FakeClock()
    errors: list[BaseException] = []

    def push() -> None:
        try:
            clock.advance(1)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=push)
    thread.start()
    thread.join()
    assert errors and "thread that created the clock" in str(errors[0])
