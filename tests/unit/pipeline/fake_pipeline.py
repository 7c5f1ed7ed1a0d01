"""The sync pipeline assembled from the package's fakes, for unit tests (no process, no model).

:class:`FakePipeline` mirrors ``tests/integration/pipeline/harness.py``'s ``Pipeline`` (same
method names), with :mod:`refarch.fakes` in place of Postgres, the queue, the index server and
the model, all on one :class:`~refarch.fakes.FakeClock`. The relay and indexer are the real code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from refarch.embeddings import product_text
from refarch.fakes import FakeClock, FakeEmbedder, FakeProductsDatabase, FakeQueue, FakeVectorIndex
from refarch.pipeline.indexer import IndexerWorker, content_hash
from refarch.pipeline.relay import drain
from refarch.queue.port import ReceivedMessage
from tests.support.pipeline import PipelineSteps


class RecordingQueue(FakeQueue):
    """A :class:`FakeQueue` that remembers every delivery and visibility change, with its time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deliveries: list[ReceivedMessage] = []
        #: (fake monotonic time, receipt handle, timeout) of each change_visibility call.
        self.visibility_changes: list[tuple[float, str, float]] = []

    def receive(self, *args: Any, **kwargs: Any) -> list[ReceivedMessage]:
        got = super().receive(*args, **kwargs)
        self.deliveries.extend(got)
        return got

    def change_visibility(self, receipt_handle: str, timeout: float) -> None:
        self.visibility_changes.append((self.clock.monotonic(), receipt_handle, timeout))
        super().change_visibility(receipt_handle, timeout)


class StopWaits:
    """A clock that logs how long each wait on ``stop`` asked for (the run loops' backoffs)."""

    def __init__(self, clock: FakeClock, stop: threading.Event) -> None:
        self.clock, self.stop = clock, stop
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.clock.monotonic()

    def now(self) -> datetime:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if event is self.stop:
            self.waits.append(timeout)
        return self.clock.wait(event, timeout)

    def start_thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        return self.clock.start_thread(target, name)


class FakePipeline(PipelineSteps):
    """Products, relay, queue, indexer and index on one fake clock."""

    def __init__(self, *, max_receives: int = 3, visibility_timeout: float = 30.0,
                 batch_size: int = 32) -> None:
        self.clock = FakeClock()
        self.db = FakeProductsDatabase(clock=self.clock)
        self.queue = RecordingQueue(max_receives=max_receives, visibility_timeout=visibility_timeout,
                                    clock=self.clock)
        self.index = FakeVectorIndex(dimension=384)
        self.embedder = FakeEmbedder()
        self.max_receives = max_receives
        self.visibility_timeout = visibility_timeout
        self.batch_size = batch_size
        self.worker = self.new_worker()

    def new_worker(self, cls: type[IndexerWorker] = IndexerWorker, **overrides: Any) -> IndexerWorker:
        """An indexer (``cls``) on this pipeline's queue, index, model, database and clock."""
        options: dict[str, Any] = {
            "text_of": product_text, "batch_size": self.batch_size,
            "visibility_timeout": self.visibility_timeout, "max_receives": self.max_receives,
            "clock": self.clock,
        }
        options.update(overrides)
        queue = options.pop("queue", self.queue)
        return cls(queue, self.index, self.embedder, self.db.connect, **options)

    # -- database -------------------------------------------------------------------------

    def insert(self, sku: str, name: str = "", description: str = "a thing", price: float = 10,
               category: str | None = "Kitchen") -> int:
        return self.db.insert(sku, name=name or f"Product {sku}", description=description,
                              price=price, category=category)

    def postgres_state(self) -> dict[int, tuple[int, str]]:
        """{id: (search_version, hash of the embedded text)} from the database."""
        return {pid: (row["search_version"], content_hash(product_text(row)))
                for pid, row in self.db.products.items()}

    # -- pipeline -------------------------------------------------------------------------

    def relay(self) -> int:
        with self.db.connect() as conn:
            return drain(conn, self.queue, 100, clock=self.clock).published

    def close(self) -> None:
        self.worker.close()
