"""Waiting for something to become true, with a deadline (one implementation for all tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], object], timeout: float, *, interval: float = 0.1) -> bool:
    """Call ``condition`` until it returns something truthy or ``timeout`` seconds pass.

    Returns whether it became true; it is always called at least once, and once more at the
    deadline, so a slow machine never fails a check that was about to pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)


def eventually(check: Callable[[], T], timeout: float, *, interval: float = 0.5) -> T:
    """Run ``check`` (which asserts) until it passes; re-raise its last AssertionError at the
    deadline. ``timeout`` 0 runs it exactly once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)


def poll_value(read: Callable[[], T], check: Callable[[T], bool], timeout: float,
               *, interval: float = 0.5) -> T:
    """``read()`` until ``check(value)`` holds or ``timeout`` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    value = read()
    while not check(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = read()
    return value
