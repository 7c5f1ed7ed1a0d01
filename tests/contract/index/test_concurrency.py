"""Several writer processes and reader processes at once, like indexers and the app.

Three processes upsert (and overwrite) their own id ranges while two processes query and list
all the time; afterwards every record holds its last written value, nobody saw an error, and
every match a reader got pointed at a record that existed.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback

import numpy as np
import pytest

from tests.contract.index.backends import Backend

DIM = 16
PER_WRITER = 600


def _vector(i: int, version: int) -> list[float]:
    return np.random.default_rng(i * 10 + version).standard_normal(DIM).astype(np.float32).tolist()


def _writer(host: str, api_key: str, ns: str, first: int, errors) -> None:
    from pinecone import Pinecone

    try:
        index = Pinecone(api_key=api_key).Index(host=host)
        ids = range(first, first + PER_WRITER)
        for version in (1, 2):
            batch = []
            for i in ids:
                batch.append((f"w{i}", _vector(i, version), {"i": i, "version": version}))
                if len(batch) == 50:
                    index.upsert(vectors=batch, namespace=ns)
                    batch = []
            if batch:
                index.upsert(vectors=batch, namespace=ns)
    except Exception:  # noqa: BLE001 - reported to the parent
        errors.put(traceback.format_exc())


def _reader(host: str, api_key: str, ns: str, stop, errors, seen) -> None:
    from pinecone import Pinecone

    try:
        index = Pinecone(api_key=api_key).Index(host=host)
        rng = np.random.default_rng()
        queries = 0
        while not stop.is_set() or queries < 5:
            result = index.query(vector=rng.standard_normal(DIM).tolist(), top_k=10,
                                 namespace=ns, filter={"version": {"$gte": 1}},
                                 include_metadata=True)
            for match in result.matches:
                assert match.id == f"w{int(match.metadata['i'])}"
            index.describe_index_stats()
            queries += 1
        seen.put(queries)
    except Exception:  # noqa: BLE001
        errors.put(traceback.format_exc())


@pytest.mark.slow
def test_concurrent_writers_and_readers(backend: Backend, ns: str) -> None:
    name = backend.create_index(DIM)
    try:
        host = backend.client.describe_index(name).host
        ctx = mp.get_context("spawn")
        errors, seen, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        readers = [ctx.Process(target=_reader, args=(host, "k", ns, stop, errors, seen))
                   for _ in range(2)]
        writers = [ctx.Process(target=_writer, args=(host, "k", ns, n * PER_WRITER, errors))
                   for n in range(3)]
        for process in readers + writers:
            process.start()
        for process in writers:
            process.join(timeout=300)
        stop.set()
        for process in readers:
            # Spawned readers import the SDK first: slow on a busy machine, so wait long.
            process.join(timeout=300)
        problems = []
        while not errors.empty():
            problems.append(errors.get())
        assert not problems, "\n".join(problems)
        assert all(seen.get(timeout=60) >= 5 for _ in readers)
        index = backend.client.Index(name)
        ids = [f"w{i}" for i in range(3 * PER_WRITER)]
        assert index.describe_index_stats().namespaces[ns].vector_count == len(ids)
        for start in range(0, len(ids), 500):
            fetched = index.fetch(ids=ids[start:start + 500], namespace=ns).vectors
            for vid in ids[start:start + 500]:
                i = int(vid[1:])
                assert fetched[vid].metadata == {"i": float(i), "version": 2.0}
                assert np.array_equal(np.float32(fetched[vid].values), np.float32(_vector(i, 2)))
    finally:
        backend.drop_index(name)
