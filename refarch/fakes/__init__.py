"""Fakes shipped with the package, for fast tests of code built on refarch (as httpx ships
``MockTransport``): each implements the same port as the real component and runs its contract
suite, so it cannot drift from it.

* :class:`FakeClock` — manual time (:mod:`refarch.fakes.clock`);
* :class:`FakeQueue` — the SQS FIFO semantics of :class:`refarch.queue.port.Queue` in memory;
* :class:`FakeVectorIndex` — :class:`refarch.index.port.VectorIndex`, exact brute-force search;
* :class:`FakeEmbedder` — a deterministic hashed bag-of-words :class:`refarch.embeddings.Embedder`;
* :class:`FakeProductsDatabase` — the products table, outbox and reconcile runs behind a
  psycopg-like connection that answers the statements :mod:`refarch.db.products` names.

Nothing here starts a process, opens a socket or loads a model.
"""

from refarch.fakes.clock import FakeClock
from refarch.fakes.embedder import FakeEmbedder
from refarch.fakes.index import FakeVectorIndex
from refarch.fakes.products import FakeProductsDatabase
from refarch.fakes.queue import FakeQueue

__all__ = ["FakeClock", "FakeEmbedder", "FakeProductsDatabase", "FakeQueue", "FakeVectorIndex"]
