"""Embedding speed and quality: sentence-transformers (torch) vs ONNX Runtime fp32 and int8.

All in the same run, on generated product texts: texts/s at batch sizes 32, 64 and 128 with 1
and 2 threads (best of ``--repeat`` interleaved rounds, so a burst of load from other processes
does not decide the comparison), the ratio of each ONNX figure to torch at the same batch and
threads, single-query latency p50/p95, process cold start (interpreter start to first vector,
in a fresh process), and nDCG@10 of every backend on the labelled shopper queries (exact
search over ``--corpus`` generated products; a product is relevant when it is of the query's
type). The machine's load average is printed too: other processes change every figure.

    .venv/bin/python bench/bench_embeddings.py [--texts 384] [--threads 1,2]
        [--batch-sizes 32,64,128] [--repeat 2] [--corpus 2000]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from refarch.catalog import generate_products, labelled_queries
from refarch.embeddings import Embedder, load_embedder, product_text
from refarch.logs import format_event
from refarch.settings import Settings

BACKENDS = {
    "torch": ("sentence-transformers", "fp32"),
    "onnx_fp32": ("onnx", "fp32"),
    "onnx_int8": ("onnx", "int8"),
}
_COLD_START = (
    "import time, sys; t = time.perf_counter()\n"
    "from refarch.embeddings import get_embedder\n"
    "from refarch.settings import Settings\n"
    "get_embedder(Settings.from_env()).encode_query('travel mug')\n"
    "print(time.perf_counter() - t)\n"
)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _time(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _load(label: str, threads: int, settings: Settings) -> Embedder:
    backend, precision = BACKENDS[label]
    if backend == "sentence-transformers":
        import torch

        torch.set_num_threads(threads)
    return load_embedder(
        settings.model, backend=backend, precision=precision, threads=threads,
        models_dir=settings.models_dir or settings.home / "models",
    )


def _ndcg10(embedder: Embedder, corpus_texts: list[str], corpus_types: list[str]) -> float:
    vectors = embedder.encode(corpus_texts)
    gains = []
    for query, _, type_name in labelled_queries():
        order = np.argsort(-(vectors @ embedder.encode_query(query)))[:10]
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(order) if corpus_types[i] == type_name)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, corpus_types.count(type_name))))
        gains.append(dcg / ideal if ideal else 0.0)
    return statistics.fmean(gains)


def _cold_start(label: str) -> float:
    backend, precision = BACKENDS[label]
    env = {**os.environ, "REFARCH_EMBED_BACKEND": backend, "REFARCH_EMBED_PRECISION": precision}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _COLD_START], env=env, capture_output=True,
                         text=True, check=True)
    wall = time.perf_counter() - started
    del out
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=384, help="product texts to embed per run")
    parser.add_argument("--batch-sizes", type=_ints, default=[32, 64, 128])
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time counts")
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="thread counts to try")
    parser.add_argument("--corpus", type=int, default=2000, help="products for nDCG@10")
    args = parser.parse_args()
    settings = Settings.from_env()
    print(format_event("environment", cpus=os.cpu_count(), load_average=f"{os.getloadavg()[0]:.2f}"))

    texts = [product_text(p) for p in generate_products(args.texts, seed=1)]
    embedders = {(label, n): _load(label, n, settings) for label in BACKENDS for n in args.threads}
    for embedder in embedders.values():
        embedder.encode(texts[:64])  # warm-up: first calls allocate and pick kernels

    best: dict[tuple[str, int, int], float] = {}
    for _ in range(args.repeat):
        for (label, n_threads), embedder in embedders.items():
            if label == "torch":
                import torch

                torch.set_num_threads(n_threads)
            for batch in args.batch_sizes:
                seconds = _time(lambda e=embedder, b=batch: e.encode(texts, batch_size=b))
                key = (label, n_threads, batch)
                best[key] = min(seconds, best.get(key, seconds))
    for (label, n_threads, batch), seconds in sorted(best.items()):
        rate = len(texts) / seconds
        torch_rate = len(texts) / best[("torch", n_threads, batch)]
        print(format_event(
            "throughput", backend=label, threads=n_threads, batch=batch,
            texts_per_s=f"{rate:.1f}", vs_torch=f"{rate / torch_rate:.2f}x",
        ))

    queries = [q for q, _, _ in labelled_queries()][:100]
    for (label, n_threads), embedder in embedders.items():
        if label == "torch":
            import torch

            torch.set_num_threads(n_threads)
        latencies = sorted(_time(lambda q=q, e=embedder: e.encode_query(q)) for q in queries)
        print(format_event(
            "query_latency", backend=label, threads=n_threads,
            p50_ms=f"{1000 * latencies[len(latencies) // 2]:.2f}",
            p95_ms=f"{1000 * latencies[int(len(latencies) * 0.95)]:.2f}",
        ))

    corpus = list(generate_products(args.corpus, seed=3))
    corpus_texts = [product_text(p) for p in corpus]
    corpus_types = [str(p.attributes["type"]) for p in corpus]
    top = max(args.threads)
    scores = {label: _ndcg10(embedders[(label, top)], corpus_texts, corpus_types) for label in BACKENDS}
    for label, score in scores.items():
        print(format_event("ndcg_at_10", backend=label, queries=len(list(labelled_queries())),
                           corpus=args.corpus, ndcg10=f"{score:.4f}",
                           vs_fp32=f"{score - scores['onnx_fp32']:+.4f}"))

    for label in BACKENDS:
        print(format_event("cold_start", backend=label,
                           seconds_to_first_vector=f"{min(_cold_start(label) for _ in range(2)):.2f}"))
    print(format_event("done", load_average=f"{os.getloadavg()[0]:.2f}"))


if __name__ == "__main__":
    main()
