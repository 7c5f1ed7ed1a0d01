"""A readers-writer lock: many concurrent readers, or one writer, without starving either.

hnswlib does not allow a search while the graph is being modified, so each namespace of the
local index guards its in-memory state with one of these: queries share it, writes and the
background indexer take it exclusively for short stretches. Waiting writers hold back new
readers, and when a writer leaves, the readers that were already waiting go before the next
writer, so a steady stream of writes (bulk loading) cannot starve queries or the reverse.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RWLock:
    """Phase-fair readers-writer lock (not reentrant)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._readers_waiting = 0
        # Readers let in ahead of waiting writers (those waiting when the last writer left).
        self._reader_passes = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared for the duration of the ``with`` block."""
        with self._cond:
            self._readers_waiting += 1
            try:
                while self._writer or (self._writers_waiting and not self._reader_passes):
                    self._cond.wait()
            except BaseException:
                self._readers_waiting -= 1
                self._reader_passes = min(self._reader_passes, self._readers_waiting)
                self._cond.notify_all()
                raise
            self._readers_waiting -= 1
            if self._reader_passes:
                self._reader_passes -= 1
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock exclusively for the duration of the ``with`` block."""
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers or self._reader_passes:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._reader_passes = self._readers_waiting
                self._cond.notify_all()
