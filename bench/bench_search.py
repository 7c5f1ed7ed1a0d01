"""Search through the whole stack: latency by stage at 10,000 and 100,000 products, and nDCG@10.

``refarch.search.search`` is timed stage by stage (embed the query, query the index, read the
rows from Postgres) over the labelled shopper queries of the catalog generator
(``refarch.catalog.labelled_queries``: 140 queries, each naming the product type it wants),
unfiltered and with a category filter, at two catalog sizes. p50 and p95 per stage.

**Quality**: nDCG@10 on the same queries at 10,000 products. Relevance is graded from the
generator's attributes: 2 when a result is of the query's product type, 1 when it is of the
query's category, 0 otherwise; the ideal ranking is computed from the whole catalog. As a
baseline measured in the same run, exact brute-force cosine search (numpy) over the same
vectors gets the same score treatment: the gap is what the approximate index and the
Postgres round trip cost in quality (ideally nothing).

Vectors: the first 10,000 products are embedded with the real model. To reach 100,000 without
an hour of embedding, each further product gets the vector of a real product of the *same type*
plus a little noise (then normalised): same clusters, same filter selectivity, so the index and
Postgres stages see realistic work. Quality is only measured where every vector is real.

    .venv/bin/python bench/bench_search.py [--small 10000] [--large 100000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import sys
import time
from collections import Counter, defaultdict

import numpy as np

from refarch.catalog import generate_products, labelled_queries
from refarch.db.load import load_products
from refarch.db.products import get_products
from refarch.domain.product import StoredProduct
from refarch.domain.text import content_hash, embedded_text, embedding_input
from refarch.domain.vectors import vector_id, vector_metadata
from refarch.embeddings import get_embedder
from refarch.local.sandbox import start_sandbox
from refarch.logs import format_event
from refarch.search import search


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _upsert(index, rows: dict[int, StoredProduct], vectors: dict[int, np.ndarray]) -> None:
    records = []
    for pid, row in rows.items():
        text_hash = content_hash(embedded_text(row))
        records.append((vector_id(pid), vectors[pid], vector_metadata(row, text_hash)))
        if len(records) == 500:
            index.upsert(records)
            records = []
    if records:
        index.upsert(records)


def _latency(box, embedder, index, queries: list[tuple[str, str, str]], repeats: int, size: int) -> None:
    for filtered in (False, True):
        stages: dict[str, list[float]] = defaultdict(list)
        with box.connect("app") as conn:
            for _ in range(repeats):
                for query, category, _ in queries:
                    started = time.perf_counter()
                    result = search(query, embedder=embedder, index=index, conn=conn, top_k=10,
                                    filter={"category": category} if filtered else None)
                    stages["total"].append(time.perf_counter() - started)
                    for stage, seconds in result.timings.items():
                        stages[stage].append(seconds)
        fields = {}
        for stage in ("embed", "index", "postgres", "total"):
            fields[f"{stage}_p50_ms"] = round(statistics.median(stages[stage]) * 1000, 2)
            fields[f"{stage}_p95_ms"] = round(_percentile(stages[stage], 0.95) * 1000, 2)
        print(format_event("search_latency", products=size, filtered=filtered,
                           queries=len(stages["total"]), **fields))


def _dcg(gains: list[int]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def _ndcg(ranked_skus: list[str], query_type: str, query_category: str,
          labels: dict[str, tuple[str, str]], ideal: list[int]) -> float:
    gains = []
    for sku in ranked_skus[:10]:
        ptype, pcat = labels.get(sku, ("", ""))
        gains.append(2 if ptype == query_type else 1 if pcat == query_category else 0)
    best = _dcg(ideal)
    return _dcg(gains) / best if best else 0.0


def main() -> None:
    # SIGTERM unwinds like Ctrl-C, so the sandbox (Postgres, index server) is always removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the 140 queries")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    print(format_event("bench_search_start", small=args.small, large=args.large, cpus=os.cpu_count(),
                       load_average=" ".join(f"{x:.2f}" for x in os.getloadavg())))
    queries = list(labelled_queries())
    products = list(generate_products(args.large, seed=args.seed))
    labels = {p.sku: (p.attributes["type"], p.attributes["category"]) for p in products}
    with start_sandbox(prefix="refarch-bench-search-") as box:
        embedder = get_embedder(box.settings)
        index = box.index()
        with box.connect() as conn:
            load_products(conn, products[: args.small], progress=False)
            conn.execute("DELETE FROM outbox")  # this bench writes the index itself
            ids = [r[0] for r in conn.execute("SELECT id FROM products ORDER BY id")]
            rows = get_products(conn, ids)
        by_sku = {row.sku: row for row in rows.values()}
        started = time.perf_counter()
        matrix = embedder.encode([embedding_input(embedded_text(r)) for r in rows.values()],
                                 progress=True)
        print(format_event("embedded", products=len(rows),
                           seconds=round(time.perf_counter() - started, 1)))
        vectors = dict(zip(rows, matrix, strict=True))
        _upsert(index, rows, vectors)

        # Quality at the small size: the full stack against exact search, same vectors.
        type_counts = Counter(labels[sku][0] for sku in by_sku)
        category_counts = Counter(labels[sku][1] for sku in by_sku)
        id_list = list(rows)
        scores_stack, scores_exact = [], []
        with box.connect("app") as conn:
            for query, category, ptype in queries:
                n_type = type_counts[ptype]
                ideal = ([2] * n_type + [1] * (category_counts[category] - n_type))[:10]
                hits = search(query, embedder=embedder, index=index, conn=conn, top_k=10).hits
                scores_stack.append(_ndcg([h.sku for h in hits], ptype, category, labels, ideal))
                q = embedder.encode_query(query)
                top = np.argsort(-(matrix @ q))[:10]
                scores_exact.append(
                    _ndcg([rows[id_list[i]].sku for i in top], ptype, category, labels, ideal))
        print(format_event("search_quality", products=len(rows), queries=len(queries),
                           ndcg_at_10=round(statistics.mean(scores_stack), 4),
                           exact_search_ndcg_at_10=round(statistics.mean(scores_exact), 4)))
        _latency(box, embedder, index, queries, args.repeats, len(rows))

        # Grow to the large size: more rows in Postgres, perturbed same-type vectors in the index.
        rng = np.random.default_rng(args.seed)
        by_type: dict[str, list[np.ndarray]] = defaultdict(list)
        for pid, row in rows.items():
            by_type[labels[row.sku][0]].append(vectors[pid])
        with box.connect() as conn:
            load_products(conn, products[args.small :], progress=False)
            conn.execute("DELETE FROM outbox")
            more = [r[0] for r in conn.execute("SELECT id FROM products WHERE id > %s ORDER BY id",
                                               (max(ids),))]
        started = time.perf_counter()
        for start in range(0, len(more), 5_000):
            with box.connect() as conn:
                chunk = get_products(conn, more[start : start + 5_000])
            extra = {}
            for pid, row in chunk.items():
                pool = by_type[labels[row.sku][0]]
                base = pool[int(rng.integers(len(pool)))]
                v = base + rng.normal(0, 0.02, size=base.shape).astype(np.float32)
                extra[pid] = v / np.linalg.norm(v)
            _upsert(index, chunk, extra)
        print(format_event("grown", products=index.count(), seconds=round(time.perf_counter() - started, 1)))
        _latency(box, embedder, index, queries, args.repeats, index.count())
    print(format_event("bench_search_end", load_average=" ".join(f"{x:.2f}" for x in os.getloadavg())))


if __name__ == "__main__":
    main()
