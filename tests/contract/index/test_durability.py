"""``kill -9`` at a random moment loses no acknowledged write and corrupts nothing (local server).

A writer upserts, updates and deletes in a loop through the SDK and remembers every call the
server acknowledged. The server is killed with SIGKILL at a random moment (snapshots are taken
every few hundred changes, so some kills land during one), restarted on the same data
directory, and every acknowledged write must be there, exactly, while the call in flight at
the kill may or may not be. Then the next round writes on top.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pinecone import Pinecone, ServerlessSpec

from refarch.index.process import find_free_port, start_index_server
from refarch.settings import Settings

DIM = 32
SERVER_ARGS = ("--snapshot-min-changes", "200", "--snapshot-idle-seconds", "0",
               "--exact-limit", "50")


def values_for(i: int, version: int) -> list[float]:
    rng = np.random.default_rng(i * 1000 + version)
    return rng.standard_normal(DIM).astype(np.float32).tolist()


class Writer(threading.Thread):
    """Writes until the server dies; ``state`` holds what every acknowledged call left."""

    def __init__(self, index, start_at: int, state: dict[str, tuple[int, int] | None]) -> None:
        super().__init__(daemon=True)
        self.index = index
        self.next_id = start_at
        self.state = state  # id -> (i, version) or None when deleted
        self.in_flight: set[str] = set()
        self.acks = 0
        self.rng = random.Random(start_at)

    def run(self) -> None:
        version = 0
        while True:
            version += 1
            roll = self.rng.random()
            try:
                if roll < 0.6 or not self.state:
                    batch = [self.next_id + j for j in range(self.rng.randrange(1, 40))]
                    self.next_id += len(batch)
                    ids = [f"id{i}" for i in batch]
                    self.in_flight = set(ids)
                    self.index.upsert(vectors=[
                        (f"id{i}", values_for(i, version), {"i": i, "v": version})
                        for i in batch
                    ])
                    for i in batch:
                        self.state[f"id{i}"] = (i, version)
                elif roll < 0.8:
                    live = [k for k, v in self.state.items() if v is not None]
                    victims = self.rng.sample(live, min(len(live), self.rng.randrange(1, 10)))
                    self.in_flight = set(victims)
                    self.index.delete(ids=victims)
                    for vid in victims:
                        self.state[vid] = None
                else:
                    live = [k for k, v in self.state.items() if v is not None]
                    vid = self.rng.choice(live)
                    i, _ = self.state[vid]  # type: ignore[misc]
                    self.in_flight = {vid}
                    self.index.update(id=vid, values=values_for(i, version),
                                      set_metadata={"v": version})
                    self.state[vid] = (i, version)
                self.in_flight = set()
                self.acks += 1
            except Exception:  # noqa: BLE001 - the server was killed: stop writing
                return


def verify(index, state: dict[str, tuple[int, int] | None], in_flight: set[str]) -> None:
    live = {vid: iv for vid, iv in state.items() if iv is not None and vid not in in_flight}
    gone = [vid for vid, iv in state.items() if iv is None and vid not in in_flight]
    ids = list(live)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        fetched = index.fetch(ids=chunk).vectors
        for vid in chunk:
            assert vid in fetched, f"acknowledged write of {vid} was lost"
            i, version = live[vid]
            assert np.array_equal(np.float32(fetched[vid].values),
                                  np.float32(values_for(i, version))), vid
            assert fetched[vid].metadata == {"i": float(i), "v": float(version)}, vid
    for start in range(0, len(gone), 500):
        assert index.fetch(ids=gone[start:start + 500]).vectors == {}, "a deleted record is back"
    total = index.describe_index_stats().total_vector_count
    assert len(live) <= total <= len(live) + len(in_flight)
    listed = {v.id for page in index.list() for v in page.vectors}
    assert set(live) <= listed <= set(live) | in_flight
    # Search works and finds what is stored.
    probe = next(iter(live))
    i, version = live[probe]
    top = index.query(vector=values_for(i, version), top_k=1).matches
    assert top and top[0].id == probe


@pytest.mark.slow
def test_kill_minus_nine_loses_no_acknowledged_write(tmp_path: Path) -> None:
    settings = Settings.from_env({"REFARCH_HOME": str(tmp_path)})
    data_dir, port = tmp_path / "data", find_free_port()
    state: dict[str, tuple[int, int] | None] = {}
    rng = random.Random(2024)
    server = start_index_server(settings, data_dir=data_dir, port=port, extra_args=SERVER_ARGS)
    pc = Pinecone(api_key="k", host=server.url)
    pc.create_index(name="durable", dimension=DIM, metric="cosine",
                    spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    next_id = 0
    try:
        for _round in range(3):
            index = Pinecone(api_key="k", host=server.url).Index("durable")
            writer = Writer(index, next_id, state)
            writer.start()
            time.sleep(rng.uniform(1.0, 3.0))
            server.kill()  # SIGKILL, mid-write
            writer.join(timeout=60)
            assert not writer.is_alive()
            assert writer.acks > 10, "the writer barely got going; the test proves nothing"
            next_id = writer.next_id
            server = start_index_server(settings, data_dir=data_dir, port=port,
                                        extra_args=SERVER_ARGS)
            verify(Pinecone(api_key="k", host=server.url).Index("durable"), state,
                   writer.in_flight)
            # What the killed call did (or not) is now settled; forget it.
            for vid in writer.in_flight:
                state.pop(vid, None)
                Pinecone(api_key="k", host=server.url).Index("durable").delete(ids=[vid])
    finally:
        assert server.stop() == 0
    db = next(data_dir.glob("indexes/durable/records.db"))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
