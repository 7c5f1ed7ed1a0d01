"""Throughput of the local queue (PostgresQueue) on a real, durable PostgreSQL server.

Prints messages/s for sending (batches of 10) and for receive + delete with 1 and with 4
consumer threads, from a backlog of ``--messages``. As a baseline measured in the same run, the
same rows go through the cheapest possible Postgres "queue": INSERT a batch of 10, then
DELETE ... RETURNING 10 rows at a time, each in its own durable transaction, so the cost of the
queue's semantics (groups, visibility, receipts, deduplication) shows against the raw cost of
committing. The machine's load average is printed too: on a shared machine other processes
change every figure.

    .venv/bin/python bench/bench_queue.py [--messages 5000] [--database-url URL]

Without ``--database-url`` (or ``DATABASE_URL``) a throwaway server is started in a temporary
directory (fsync on, as the local stack runs it) and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg

from refarch.db.migrations import migrate
from refarch.logs import format_event
from refarch.queue.local import PostgresQueue
from refarch.queue.port import OutgoingMessage


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _database(url: str | None) -> Iterator[str]:
    """A fresh, migrated database: on the server at ``url``, or on a throwaway server."""
    if url:
        yield url
        return
    from refarch.db.server import LocalPostgres

    root = Path(tempfile.mkdtemp(prefix="refarch-bench-queue-"))
    root.chmod(0o755)  # the server runs as another user when we are root
    server = LocalPostgres(root, _free_port(), durable=True)
    try:
        server.start()
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(server.socket_dir, ignore_errors=True)


def _rate(count: int, call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return count / (time.perf_counter() - started)


def _messages(count: int, tag: str) -> list[list[OutgoingMessage]]:
    body = '{"product_id": %d, "op": "upsert", "version": 1234567}'
    return [
        [OutgoingMessage(body % i, f"p{i}", f"{tag}-{i}") for i in range(start, start + 10)]
        for start in range(0, count, 10)
    ]


def _consume(url: str, name: str, workers: int) -> int:
    done: list[int] = []

    def worker() -> None:
        with PostgresQueue(url, name=name, visibility_timeout=60) as q:
            n = 0
            while batch := q.receive(10):
                q.delete([m.receipt_handle for m in batch])
                n += len(batch)
            done.append(n)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def _baseline(url: str, count: int) -> tuple[float, float]:
    """The cheapest durable Postgres queue: plain INSERTs, then DELETE ... RETURNING."""
    with psycopg.connect(url, autocommit=True) as conn:
        # A regular table: a TEMP one skips the WAL, and with it the commit's flush.
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id bigserial PRIMARY KEY, body text)")
        batches = _messages(count, "raw")

        def send() -> None:
            for batch in batches:
                with conn.transaction():
                    conn.cursor().executemany(
                        "INSERT INTO bench_raw (body) VALUES (%s)", [(m.body,) for m in batch]
                    )

        def take() -> None:
            while conn.execute(
                "DELETE FROM bench_raw WHERE id IN (SELECT id FROM bench_raw ORDER BY id "
                "LIMIT 10 FOR UPDATE SKIP LOCKED) RETURNING body"
            ).fetchall():
                pass

        rates = _rate(count, send), _rate(count, take)
        conn.execute("DROP TABLE bench_raw")
        return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages per run (x10)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args()
    count = args.messages - args.messages % 10
    print(format_event("environment", cpus=os.cpu_count(),
                       load_average=f"{os.getloadavg()[0]:.2f}", messages=count))

    with _database(args.database_url) as url:
        migrate(url)
        raw_send, raw_take = _baseline(url, count)
        print(format_event("baseline", send_per_s=f"{raw_send:.0f}", take_per_s=f"{raw_take:.0f}"))

        for workers in (1, 4):
            name = f"bench{uuid.uuid4().hex[:8]}"
            with PostgresQueue(url, name=name) as q:
                batches = _messages(count, name)
                send_rate = _rate(count, lambda batches=batches: [q.send_batch(b) for b in batches])
            received = 0

            def consume(name: str = name, workers: int = workers) -> None:
                nonlocal received
                received = _consume(url, name, workers)

            take_rate = _rate(count, consume)
            assert received == count, f"consumed {received} of {count}"
            print(format_event(
                "local_queue", consumers=workers, send_per_s=f"{send_rate:.0f}",
                receive_delete_per_s=f"{take_rate:.0f}",
                send_vs_baseline=f"{send_rate / raw_send:.2f}",
                receive_delete_vs_baseline=f"{take_rate / raw_take:.2f}",
            ))


if __name__ == "__main__":
    main()
