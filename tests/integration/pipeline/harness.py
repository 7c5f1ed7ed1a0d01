"""A pipeline assembled from real parts for tests: Postgres, the local queue, the index, the model.

The relay and the indexer run in the test's process here (their step functions); the fault
tests run them as real processes instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from refarch.bootstrap import make_indexer
from refarch.embeddings import product_text
from refarch.pipeline.changes import ProductChange
from refarch.pipeline.indexer import IndexerWorker, content_hash
from refarch.pipeline.relay import drain
from refarch.queue.local import PostgresQueue
from refarch.settings import Settings
from tests.support.pipeline import PipelineSteps


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
        self.texts.extend(texts)
        return self.embedder.encode(texts, **kwargs)

    def encode_query(self, text: str) -> Any:
        return self.embedder.encode_query(text)


class Pipeline(PipelineSteps):
    """Owner, relay and indexer connections to one database, with one index."""

    def __init__(self, owner_url: str, relay_url: str, indexer_url: str, index: Any, embedder: Any,
                 *, max_receives: int = 3, visibility_timeout: int = 30, batch_size: int = 32) -> None:
        self.owner_url = owner_url
        self.index = index
        self.embedder = CountingEmbedder(embedder)
        self.relay_url = relay_url
        self.relay_queue = PostgresQueue(relay_url, max_receives=max_receives,
                                         visibility_timeout=visibility_timeout)
        self.indexer_queue = PostgresQueue(indexer_url, max_receives=max_receives,
                                           visibility_timeout=visibility_timeout)
        self.owner_queue = PostgresQueue(owner_url, max_receives=max_receives,
                                         visibility_timeout=visibility_timeout)
        self._connect_indexer = lambda: psycopg.connect(indexer_url, autocommit=True)
        self.worker = self.new_worker(max_receives=max_receives, batch_size=batch_size,
                                      visibility_timeout=visibility_timeout)

    def new_worker(self, *, max_receives: int, batch_size: int = 64, visibility_timeout: int = 60,
                   index: Any = None) -> IndexerWorker:
        """Another indexer on the indexer queue, built by the composition root with these
        settings (``index`` replaces the pipeline's, e.g. a wrapper that injects a race)."""
        settings = Settings.from_env({}).with_(
            queue_max_receives=max_receives, queue_visibility_timeout=visibility_timeout,
            indexer_batch_size=batch_size,
        )
        return make_indexer(settings, queue=self.indexer_queue, index=index or self.index,
                            embedder=self.embedder, connect=self._connect_indexer)

    # -- database -------------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.owner_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def insert(self, sku: str, name: str = "", description: str = "a thing", price: float = 10,
               category: str | None = "Kitchen") -> int:
        rows = self.sql(
            "INSERT INTO products (sku, name, description, price, category) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (sku, name or f"Product {sku}", description, price, category),
        )
        return int(rows[0][0])

    def postgres_state(self) -> dict[int, tuple[int, str]]:
        """{id: (search_version, hash of the embedded text)} from Postgres."""
        rows = self.sql("SELECT id, search_version, name, category, description FROM products")
        return {
            int(pid): (int(v), content_hash(product_text({"name": n, "category": c, "description": d})))
            for pid, v, n, c, d in rows
        }

    # -- pipeline -------------------------------------------------------------------------

    def relay(self) -> int:
        with psycopg.connect(self.relay_url, autocommit=True) as conn:
            return drain(conn, self.relay_queue, 100).published

    def close(self) -> None:
        self.worker.close()
        for q in (self.relay_queue, self.indexer_queue, self.owner_queue):
            q.close()


class PipelineParts:
    """Extra consumers on the same database and index (for races between indexers)."""

    def __init__(self, owner_url: str, indexer_url: str, index: Any, embedder: Any) -> None:
        self.owner_url, self.indexer_url, self.index, self.embedder = owner_url, indexer_url, index, embedder
        self._closers: list[Any] = []

    def second_worker(self) -> Any:
        side = PostgresQueue(self.owner_url, name="side", max_receives=3, visibility_timeout=30)
        settings = Settings.from_env({}).with_(queue_max_receives=3, queue_visibility_timeout=30,
                                               indexer_batch_size=8)
        worker = make_indexer(settings, queue=side, index=self.index, embedder=self.embedder,
                              connect=lambda: psycopg.connect(self.indexer_url, autocommit=True))
        self._closers += [side.close, worker.close]

        class Second:
            def handle_now(self, change: ProductChange) -> Any:
                side.send_batch([change.to_message()])
                return worker.step()

        return Second()

    def close(self) -> None:
        for close in self._closers:
            close()
