"""The local vector index, measured through the Pinecone SDK, at 100,000 and 1,000,000 vectors.

For each size it starts a fresh local server (a real subprocess) and reports:

* upsert rate: vectors/s acknowledged (durable in SQLite, queryable at once), ``--concurrency``
  requests of ``--batch`` 384-d vectors in flight, as the SDK sends them;
* indexing rate: how fast the background indexer builds the HNSW graph (time until nothing is
  pending);
* query latency p50/p95 (``top_k`` 10, one client, sequential) and recall@10 against exact
  search: unfiltered, filtered at 1 % selectivity (answered exactly) and at 10 % (answered
  from the graph);
* the baseline measured in the same run: numpy brute force over the same vectors in this
  process (the prototype of notebook 01);
* server memory (RSS, and peak) once everything is indexed and queried;
* restart: graceful stop (snapshot) and the time until the restarted server answers a query,
  then the same after ``kill -9`` (nothing to replay once a snapshot exists).

Data (see :func:`make_dataset`): clustered unit vectors calibrated on all-MiniLM-L6-v2
embeddings of generated products, with metadata ``{"bucket": i % 100, "shard": i % 10}``;
queries are held-out points of the same distribution.

    .venv/bin/python bench/bench_index.py [--sizes 100000,1000000] [--queries 200]

The default is 100,000 only (about 1 minute); 1,000,000 takes about 13 minutes on this
2-core machine, most of it building the HNSW graph.

Targets (issue 3): p50 <= 5 ms at 100k and <= 30 ms at 1M, recall@10 >= 0.95, upsert >= 5,000
vectors/s, RSS at 1M <= 4 GB. The machine's load average is printed: on a shared machine other
processes change every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pinecone import Pinecone, ServerlessSpec  # noqa: E402

from refarch.index.process import find_free_port, start_index_server  # noqa: E402
from refarch.logs import format_event  # noqa: E402
from refarch.settings import Settings  # noqa: E402

DIM = 384
TOP_K = 10


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def make_dataset(n: int, queries: int, kind: str = "embeddings", seed: int = 7
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors and ``queries`` held-out query vectors from the same distribution.

    ``embeddings`` (default) imitates sentence embeddings of a product catalog: clusters of
    about ten near-duplicates (product variants), a power-law spectrum and a shared mean
    direction, calibrated so that 3,000 of them match all-MiniLM-L6-v2 embeddings of 3,000
    generated products (90 % of the variance in ~75-90 of 384 dimensions, nearest neighbour
    at cosine ~0.9, 10th at ~0.71, mean cosine ~0.15). ``isotropic``: 1,000 clusters with
    noise in every dimension, a harder, less realistic case. Queries are extra points drawn
    like the data and not inserted (the usual ANN-benchmark methodology).
    """
    rng = np.random.default_rng(seed)
    total = n + queries
    out = np.empty((total, DIM), dtype=np.float32)
    if kind == "isotropic":
        centres = rng.standard_normal((1_000, DIM)).astype(np.float32)
        for start in range(0, total, 100_000):
            stop = min(total, start + 100_000)
            block = centres[rng.integers(0, len(centres), stop - start)]
            block += 0.6 * rng.standard_normal((stop - start, DIM)).astype(np.float32)
            out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    else:
        std = (np.arange(1, DIM + 1) ** -0.6).astype(np.float32)  # power-law spectrum
        rotation = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0].astype(np.float32)
        mean = rng.standard_normal(DIM).astype(np.float32)
        mean /= np.linalg.norm(mean)
        centres = (rng.standard_normal((max(1, n // 10), DIM)).astype(np.float32) * std) @ rotation.T
        for start in range(0, total, 100_000):
            stop = min(total, start + 100_000)
            noise = (rng.standard_normal((stop - start, DIM)).astype(np.float32) * std) @ rotation.T
            block = centres[rng.integers(0, len(centres), stop - start)] + 0.45 * noise
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            block += 0.45 * mean
            out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    order = rng.permutation(total)
    held_out = order[:queries]
    kept = np.sort(order[queries:])
    return out[kept], out[held_out]


def exact_top(vectors: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None = None,
              k: int = TOP_K) -> list[set[int]]:
    """Exact top-k ids per query (cosine = dot on unit vectors), chunked over the vectors."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        block = vectors[start : start + 200_000]
        scores = queries @ block.T
        if allowed is not None:
            scores[~allowed[:, start : start + len(block)]] = -np.inf
        ids = np.arange(start, start + len(block))
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_ids = np.concatenate([best_ids, np.broadcast_to(ids, scores.shape)], axis=1)
        top = np.argpartition(-merged_scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, top, axis=1)
        best_ids = np.take_along_axis(merged_ids, top, axis=1)
    return [set(row[np.isfinite(s)].tolist()) for row, s in zip(best_ids, best_scores, strict=True)]


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def pending(url: str) -> int:
    status = httpx.get(f"{url}/_refarch/status", headers={"Api-Key": "bench"}).json()
    return sum(index["pending"] for index in status["indexes"].values())


def timed_queries(
    index, queries: np.ndarray, filters: list[dict] | None
) -> tuple[list[float], list[set[int]]]:
    latencies, found = [], []
    for i, query in enumerate(queries):
        vector = query.tolist()
        started = time.perf_counter()
        result = index.query(vector=vector, top_k=TOP_K,
                             filter=filters[i] if filters else None)
        latencies.append(time.perf_counter() - started)
        found.append({int(m.id) for m in result.matches})
    return latencies, found


def recall(found: list[set[int]], exact: list[set[int]]) -> float:
    return float(np.mean([len(f & e) / max(1, len(e)) for f, e in zip(found, exact, strict=True)]))


def ms(latencies: list[float], q: float) -> float:
    return float(np.percentile(latencies, q) * 1000)


def bench_size(n: int, args: argparse.Namespace) -> dict[str, float]:
    vectors, query_vectors = make_dataset(n, args.queries, args.data)
    figures: dict[str, float] = {"n": n}
    home = Path(tempfile.mkdtemp(prefix="refarch-bench-index-", dir=args.tmp))
    settings = Settings.from_env({"REFARCH_HOME": str(home), "REFARCH_LOG_LEVEL": "WARNING"})
    port = find_free_port()
    server = start_index_server(settings, data_dir=home / "data", port=port,
                                extra_args=args.server_args)
    try:
        pc = Pinecone(api_key="bench", host=server.url)
        pc.create_index(name="bench", dimension=DIM, metric="cosine",
                        spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        index = pc.Index("bench")

        def send(start: int) -> int:
            stop = min(n, start + args.batch)
            rows = vectors[start:stop].tolist()
            index.upsert(vectors=[
                {"id": str(i), "values": rows[i - start],
                 "metadata": {"bucket": i % 100, "shard": i % 10}}
                for i in range(start, stop)
            ])
            return stop - start

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            done = 0
            for count in pool.map(send, range(0, n, args.batch)):
                done += count
                if done % max(args.batch, n // 10 // args.batch * args.batch) == 0:
                    print(f"  upserted {done:,}/{n:,}", file=sys.stderr, flush=True)
        upsert_seconds = time.perf_counter() - started
        figures["upsert_vectors_per_s"] = n / upsert_seconds
        while pending(server.url):
            time.sleep(0.5)
        indexed_seconds = time.perf_counter() - started
        figures["fully_indexed_s"] = indexed_seconds
        figures["indexing_vectors_per_s"] = n / indexed_seconds
        assert index.describe_index_stats().total_vector_count == n

        queries = query_vectors
        print("  exact ground truth ...", file=sys.stderr, flush=True)
        bucket = np.arange(n) % 100
        shard = np.arange(n) % 10
        q_bucket = np.arange(args.queries) % 100
        q_shard = np.arange(args.queries) % 10
        started = time.perf_counter()
        exact = exact_top(vectors[:n], queries)
        figures["numpy_exact_ms_per_query"] = (time.perf_counter() - started) / args.queries * 1000
        exact_1 = exact_top(vectors[:n], queries, bucket[None, :] == q_bucket[:, None])
        exact_10 = exact_top(vectors[:n], queries, shard[None, :] == q_shard[:, None])

        timed_queries(index, queries[:20], None)  # warm up connections and caches
        lat, found = timed_queries(index, queries, None)
        figures["query_p50_ms"], figures["query_p95_ms"] = ms(lat, 50), ms(lat, 95)
        figures["recall_at_10"] = recall(found, exact)
        lat, found = timed_queries(index, queries, [{"bucket": int(b)} for b in q_bucket])
        figures["filtered_1pct_p50_ms"] = ms(lat, 50)
        figures["filtered_1pct_recall_at_10"] = recall(found, exact_1)
        lat, found = timed_queries(index, queries, [{"shard": int(s)} for s in q_shard])
        figures["filtered_10pct_p50_ms"] = ms(lat, 50)
        figures["filtered_10pct_recall_at_10"] = recall(found, exact_10)
        figures["server_rss_mb"], figures["server_peak_rss_mb"] = rss_mb(server.pid)

        # Restart: graceful (snapshot on the way down), then kill -9 (snapshot already there).
        started = time.perf_counter()
        assert server.stop() == 0
        figures["graceful_stop_s"] = time.perf_counter() - started
        for kind in ("graceful", "kill9"):
            started = time.perf_counter()
            server = start_index_server(settings, data_dir=home / "data", port=port,
                                        extra_args=args.server_args)
            result = Pinecone(api_key="bench", host=server.url).Index("bench").query(
                vector=queries[0].tolist(), top_k=TOP_K)
            figures[f"reopen_after_{kind}_s"] = time.perf_counter() - started
            assert {int(m.id) for m in result.matches} and pending(server.url) == 0
            if kind == "graceful":
                figures["reopened_rss_mb"] = rss_mb(server.pid)[0]
                server.kill()
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return figures


TARGETS = {
    100_000: [("query_p50_ms", "<=", 5.0), ("recall_at_10", ">=", 0.95),
              ("filtered_1pct_recall_at_10", ">=", 0.95),
              ("upsert_vectors_per_s", ">=", 5_000)],
    1_000_000: [("query_p50_ms", "<=", 30.0), ("recall_at_10", ">=", 0.95),
                ("filtered_1pct_recall_at_10", ">=", 0.95),
                ("upsert_vectors_per_s", ">=", 5_000), ("server_rss_mb", "<=", 4096)],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_ints, default=[100_000],
                        help="vector counts, e.g. 100000,1000000 (1M takes ~13 min here)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200,
                        help="vectors per upsert request (384-d JSON: ~8 KB each, 2 MB max)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="upsert requests in flight (the SDK's own default is 8)")
    parser.add_argument("--data", choices=["embeddings", "isotropic"], default="embeddings",
                        help="synthetic data like sentence embeddings (default) or a harder "
                             "isotropic mixture")
    parser.add_argument("--tmp", default=None, help="where the bench's data directories go")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--server-arg", action="append", default=[], dest="server_args",
                        help="extra server flag, e.g. --server-arg=--ef-search=64")
    args = parser.parse_args()
    print(format_event("bench_index_start", sizes=",".join(map(str, args.sizes)), data=args.data,
                       load_average=" ".join(f"{x:.2f}" for x in os.getloadavg()),
                       cpus=os.cpu_count()), flush=True)
    failures = 0
    for n in args.sizes:
        figures = bench_size(n, args)
        print(format_event("bench_index", **{k: round(v, 3) if isinstance(v, float) else v
                                             for k, v in figures.items()},
                           load_average=f"{os.getloadavg()[0]:.2f}"), flush=True)
        for key, op, target in TARGETS.get(n, []):
            value = figures[key]
            ok = value <= target if op == "<=" else value >= target
            failures += not ok
            print(f"  {'PASS' if ok else 'FAIL'}  {key} = {value:,.3f} (target {op} {target:,})",
                  flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
