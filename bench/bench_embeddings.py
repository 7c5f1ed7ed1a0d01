"""Embedding throughput with the real model on generated product texts.

Prints sentences/s and tokens/s at batch sizes 32, 64 and 128 for each torch thread count
asked for (default: 1 and torch's default), best of ``--repeat`` interleaved rounds, and, as a
baseline measured in the same run, plain
``SentenceTransformer.encode`` at batch 64 without refarch's checks (empty text, truncation
count), so the cost of those checks shows. The machine's load average is printed too: on a
shared machine other processes change every figure.

    .venv/bin/python bench/bench_embeddings.py [--texts 384] [--threads 1,2]
        [--batch-sizes 32,64,128] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from refarch.catalog import generate_products
from refarch.embeddings import Embedder, get_embedder, product_text
from refarch.logs import format_event
from refarch.settings import Settings


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _time(call) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=384, help="product texts to embed per run")
    parser.add_argument("--batch-sizes", type=_ints, default=[32, 64, 128])
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time counts")
    parser.add_argument("--threads", type=_ints, default=None,
                        help="torch thread counts to try (default: 1 and torch's default)")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    threads = args.threads or sorted({1, default_threads})
    print(format_event(
        "environment", cpus=os.cpu_count(), torch=torch.__version__,
        torch_threads_default=default_threads, interop_threads=torch.get_num_interop_threads(),
        load_average=f"{os.getloadavg()[0]:.2f}",
    ))

    embedder: Embedder = get_embedder(Settings.from_env())
    texts = [product_text(p) for p in generate_products(args.texts, seed=1)]
    counts = embedder.token_counts(texts)
    tokens = sum(min(c, embedder.max_seq_length) for c in counts)
    print(format_event(
        "workload", model=embedder.name, texts=len(texts), tokens=tokens,
        mean_tokens=f"{tokens / len(texts):.1f}", max_tokens=max(counts),
    ))
    embedder.encode(texts[:64])  # warm-up: first calls allocate and pick kernels

    # Interleave the configurations and keep each one's best time over --repeat rounds, so
    # that a burst of load from other processes does not decide the comparison.
    model = embedder._model
    runs = {
        (label, n_threads, batch_size): call
        for n_threads in threads
        for label, batch_size, call in [
            *[("embed", b, lambda b=b: embedder.encode(texts, batch_size=b))
              for b in args.batch_sizes],
            # Baseline in the same run: the bare model at batch 64, no refarch checks.
            ("embed_baseline_sentence_transformers", 64, lambda: model.encode(
                texts, batch_size=64, show_progress_bar=False, normalize_embeddings=True)),
        ]
    }
    best: dict[tuple[str, int, int], float] = {}
    for _ in range(args.repeat):
        for (label, n_threads, batch_size), call in sorted(
            runs.items(), key=lambda item: (item[0][2], item[0][0], item[0][1])
        ):
            torch.set_num_threads(n_threads)
            seconds = _time(call)
            key = (label, n_threads, batch_size)
            best[key] = min(seconds, best.get(key, seconds))
    for (label, n_threads, batch_size), seconds in sorted(best.items()):
        print(format_event(
            label, threads=n_threads, batch=batch_size, seconds=seconds,
            sentences_per_s=f"{len(texts) / seconds:.1f}", tokens_per_s=f"{tokens / seconds:.0f}",
        ))
    torch.set_num_threads(default_threads)
    print(format_event("done", load_average=f"{os.getloadavg()[0]:.2f}"))


if __name__ == "__main__":
    main()
