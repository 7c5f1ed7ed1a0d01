"""Knobs of the local index engine, with defaults measured by ``bench/bench_index.py``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tuning:
    """How the engine trades speed, recall, memory and snapshot frequency."""

    #: HNSW graph degree (hnswlib ``M``): links per node; memory is ~8*M bytes per vector.
    hnsw_m: int = 16
    #: Candidate list size while building the graph (hnswlib ``ef_construction``).
    ef_construction: int = 128
    #: Candidate list size while searching a graph of up to ``ef_growth_from`` vectors (raised
    #: to ``top_k`` when that is larger).
    ef_search: int = 256
    #: Beyond this many vectors in the graph, the search list grows with the square root of
    #: the graph's size (810 at 1,000,000): at a fixed list size HNSW's recall falls as the
    #: graph grows (measured: recall@10 0.989 at 100k but 0.946 at 1M with 256, 0.957 with 512).
    ef_growth_from: int = 100_000
    #: Filtered queries matching at most this many records are answered by exact search.
    exact_limit: int = 20_000
    #: Vectors written but not yet in the HNSW graph are searched exactly while there are at
    #: most this many (an acknowledged write is visible to the next query). During a bulk load
    #: beyond that, queries answer from the graph alone until the indexer catches up: reads
    #: are then eventually consistent, as Pinecone's are (the query's
    #: ``x-pinecone-max-indexed-lsn`` says how fresh they are).
    exact_pending_limit: int = 20_000
    #: Vectors waiting for the indexer above which writers wait too (pending vectors cost no
    #: memory of their own; this only bounds how far the graph may lag).
    pending_limit: int = 1_000_000
    #: Threads hnswlib uses to insert a chunk of pending vectors.
    index_threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    #: Snapshot a namespace once it has been idle this long after at least ``snapshot_min``
    #: changes...
    snapshot_idle_seconds: float = 2.0
    snapshot_min_changes: int = 1_000
    #: ...or at once after this many changes, idle or not (bounds the replay after a crash).
    snapshot_max_changes: int = 500_000

    def ef_for(self, graph_size: int) -> int:
        """The search list size for a graph holding ``graph_size`` vectors."""
        growth = max(1.0, math.sqrt(graph_size / max(1, self.ef_growth_from)))
        return math.ceil(self.ef_search * growth)
