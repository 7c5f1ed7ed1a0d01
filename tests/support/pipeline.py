"""What the real-stack pipeline harness and the fake pipeline share: stepping the indexer until
the queue is empty, one relay-then-index round, the index's state, and summed step counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from refarch.pipeline.indexer import IndexerStepResult, IndexerWorker
from refarch.pipeline.reconcile import index_entries


class PipelineSteps:
    """Mixed into a harness that has ``worker``, ``index`` and a ``relay()`` of its own."""

    worker: IndexerWorker
    index: Any

    def relay(self) -> int:
        raise NotImplementedError

    def index_all(self, max_steps: int = 50) -> list[IndexerStepResult]:
        """Step the indexer until a step receives nothing (at most ``max_steps``)."""
        results = []
        for _ in range(max_steps):
            result = self.worker.step()
            if result.received == 0:
                break
            results.append(result)
        return results

    def sync(self) -> list[IndexerStepResult]:
        """Relay the outbox, then index everything queued."""
        self.relay()
        return self.index_all()

    def index_state(self) -> dict[int, tuple[int | None, str | None]]:
        """{id: (version, content hash)} of every vector."""
        return index_entries(self.index)


def totals(results: Sequence[IndexerStepResult]) -> dict[str, int]:
    """The counts of several steps, summed."""
    keys = ("received", "embedded", "reused", "deleted", "current", "failed", "dead_lettered")
    return {k: sum(getattr(r, k) for r in results) for k in keys}
