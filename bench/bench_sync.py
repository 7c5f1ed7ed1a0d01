"""The sync pipeline's speed: backfill throughput against the model's own, and freshness.

1. **Backfill throughput**, Postgres -> index, in products/s: ``--products`` rows are loaded,
   the outbox is cleared, indexer processes (as ``refarch up`` runs them) are started and
   warmed up, then ``backfill`` enqueues every row and the clock runs until the index holds
   them all. Two pool shapes are measured: 1 worker using every core, and 2 workers with one
   core each.
2. **Raw embedding throughput** of the same texts, in this process, at the indexer's batch size,
   with torch on every core and on one core (the better counts: on a busy machine one thread
   can beat two), measured before and after the pipeline runs (the baseline is their mean, so a
   change in machine load during the run shows as a gap between the two). Target: pipeline /
   raw >= 0.9.
3. **Freshness**: on an otherwise idle stack (one relay, one indexer), ``--edits`` single-row
   UPDATEs of a description, each timed from its commit until the index holds the new version
   (what a search then finds), p50 and p95. Target: p95 < 1 s.

    .venv/bin/python bench/bench_sync.py [--products 3000] [--edits 40]

Everything runs in a throwaway sandbox (Postgres + index server in a temporary directory).
The machine's load average is printed: on a shared machine other processes move every figure.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time

from refarch.catalog import generate_products
from refarch.db.load import load_products
from refarch.db.products import iter_products
from refarch.domain.text import embedded_text, embedding_input
from refarch.embeddings import get_embedder
from refarch.local.sandbox import start_sandbox
from refarch.local.stack import indexer_processes
from refarch.local.supervisor import ProcessSpec, Supervisor
from refarch.logs import format_event
from refarch.pipeline.backfill import backfill


def _raw_throughput(embedder, texts: list[str], batch_size: int) -> float:
    """The model's own speed on these texts: the best of all-cores and one-core torch."""
    import torch

    default_threads = torch.get_num_threads()
    best = 0.0
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        started = time.perf_counter()
        embedder.encode([embedding_input(t) for t in texts], batch_size=batch_size)
        rate = len(texts) / (time.perf_counter() - started)
        print(format_event("raw_embedding_config", torch_threads=threads, texts_per_second=round(rate, 1)))
        best = max(best, rate)
    torch.set_num_threads(default_threads)
    return best


def _wait_for_count(index, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if index.count() >= n:
            return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError(f"the index did not reach {n} vectors within {timeout:.0f} s")


def _start(box, specs: list[ProcessSpec], name: str) -> Supervisor:
    supervisor = Supervisor(specs, box.home / "logs" / name, base_env=box.env())
    supervisor.start_all()
    for spec in specs:
        marker = "event=relay_listening" if spec.name == "relay" else "event=indexer_started"
        if not supervisor.wait_for_log(spec.name, marker, timeout=600):
            raise RuntimeError(f"{spec.name} did not start; see {supervisor.log_path(spec.name)}")
    return supervisor


def _warm_up(box, index) -> None:
    """One product through every worker, so no model is cold when the clock starts."""
    from refarch.pipeline.changes import ProductChange, publish

    with box.connect() as conn:
        rows = conn.execute("SELECT id, search_version FROM products ORDER BY id LIMIT 40").fetchall()
    run = f"warm{time.monotonic_ns()}"  # a fresh token: the queue deduplicates repeated ids
    publish(box.queue("relay"),
            [ProductChange(pid, v, "upsert", source="repair", run=run) for pid, v in rows])
    _wait_for_count(index, len(rows), 300)
    time.sleep(1.0)
    index.delete(list(index.list_ids()))


def backfill_throughput(box, index, n: int, workers: int) -> float:
    supervisor = _start(box, indexer_processes(box.settings, workers), f"w{workers}")
    try:
        _warm_up(box, index)
        with box.connect("relay") as conn:
            started = time.perf_counter()
            backfill(conn, box.queue("relay"), batch_size=1000, progress=False)
        done = _wait_for_count(index, n, timeout=3600)
        return n / (done - started)
    finally:
        supervisor.stop_all()
        index.delete(list(index.list_ids()))


def freshness(box, index, edits: int) -> list[float]:
    # The stack as `refarch up` runs it by default: one relay, REFARCH_INDEXER_WORKERS indexers.
    specs = [ProcessSpec("relay", box.refarch_command("relay"))]
    specs += indexer_processes(box.settings, box.settings.indexer_workers)
    supervisor = _start(box, specs, "fresh")
    lags: list[float] = []
    try:
        with box.connect() as conn:  # let the pipeline index everything first
            conn.execute("SELECT 1")
        with box.connect("relay") as conn:
            backfill(conn, box.queue("relay"), progress=False)
        with box.connect() as conn:
            total = conn.execute("SELECT count(*) FROM products").fetchone()[0]
        _wait_for_count(index, total, 3600)
        time.sleep(1.0)
        with box.connect("app") as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM products ORDER BY random() LIMIT %s", (edits,))]
            for i, pid in enumerate(ids):
                version = conn.execute(
                    "UPDATE products SET description = description || %s WHERE id = %s "
                    "RETURNING search_version",
                    (f" Edition {i}.", pid),
                ).fetchone()[0]
                committed = time.perf_counter()
                while True:
                    held = index.fetch([str(pid)]).get(str(pid))
                    if held and int(held[1].get("version", 0)) >= version:
                        break
                    if time.perf_counter() - committed > 60:
                        raise TimeoutError(f"edit {i} not visible after 60 s")
                    time.sleep(0.002)
                lags.append(time.perf_counter() - committed)
                time.sleep(0.3)  # idle between edits
    finally:
        supervisor.stop_all()
    return lags


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the sandbox (Postgres, index server) is always removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=3000)
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64, help="indexer batch (texts per model call)")
    parser.add_argument("--skip-throughput", action="store_true", help="measure freshness only")
    args = parser.parse_args()
    print(format_event("bench_sync_start", products=args.products, cpus=os.cpu_count(),
                       load_average=" ".join(f"{x:.2f}" for x in os.getloadavg())))
    with start_sandbox(prefix="refarch-bench-sync-", visibility_timeout=300) as box:
        box.settings = box.settings.with_(indexer_batch_size=args.batch_size)
        with box.connect() as conn:
            load_products(conn, generate_products(args.products, seed=1), progress=False)
            conn.execute("DELETE FROM outbox")  # backfill is what we measure
            texts = [embedded_text(product) for product in iter_products(conn)]
        index = box.index()
        if not args.skip_throughput:
            throughput(box, index, texts, args)
        lags = freshness(box, index, args.edits)
        print(format_event(
            "freshness", edits=len(lags), p50_seconds=round(statistics.median(lags), 3),
            p95_seconds=round(_percentile(lags, 0.95), 3), max_seconds=round(max(lags), 3),
            workers=box.settings.indexer_workers, target="p95<1s",
        ))
    print(format_event("bench_sync_end", load_average=" ".join(f"{x:.2f}" for x in os.getloadavg())))


def throughput(box, index, texts: list[str], args: argparse.Namespace) -> None:
    """Backfill throughput of two pool shapes against the raw model, in one run."""
    embedder = get_embedder(box.settings)
    embedder.encode(texts[:64])  # warm up
    raw_before = _raw_throughput(embedder, texts, args.batch_size)
    print(format_event("raw_embedding", texts_per_second=round(raw_before, 1), when="before"))
    pipeline: dict[int, float] = {}
    for workers in (1, 2):
        pipeline[workers] = backfill_throughput(box, index, args.products, workers)
        print(format_event("backfill_throughput", workers=workers,
                           products_per_second=round(pipeline[workers], 1)))
    raw_after = _raw_throughput(embedder, texts, args.batch_size)
    print(format_event("raw_embedding", texts_per_second=round(raw_after, 1), when="after"))
    baseline = (raw_before + raw_after) / 2
    best = max(pipeline, key=pipeline.get)
    print(format_event(
        "sync_throughput", raw_texts_per_second=round(baseline, 1),
        pipeline_products_per_second=round(pipeline[best], 1), best_workers=best,
        ratio=round(pipeline[best] / baseline, 3), target=">=0.9",
    ))


if __name__ == "__main__":
    main()
