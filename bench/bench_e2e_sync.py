"""End to end, the way a user meets it: ``refarch up --detach --generate N`` until
``refarch sync-wait`` returns (start-up included), then the first ``refarch search``, against
plain sentence-transformers embedding the same N texts in this process, in the same run.

Issue 11's target: the whole stack (ONNX Runtime, the default) syncs in at most 1/1.5 of the
time sentence-transformers alone needs to embed the texts. ``--backends onnx,sentence-transformers``
also runs the stack on the torch backend (what `make demo` did before), for the before/after.
Each stack runs in its own throwaway REFARCH_HOME; the machine's load average is printed,
since other processes move every figure.

    .venv/bin/python bench/bench_e2e_sync.py [--products 6000] [--backends onnx]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from refarch.catalog import generate_products
from refarch.domain.text import embedding_input, product_text
from refarch.embeddings import load_embedder
from refarch.logs import format_event
from refarch.settings import DEFAULT_MODEL

REFARCH = [sys.executable, "-m", "refarch.cli"]


def _raw_sentence_transformers(n: int) -> float:
    texts = [embedding_input(product_text(p)) for p in generate_products(n, seed=42)]
    embedder = load_embedder(DEFAULT_MODEL, backend="sentence-transformers")
    embedder.encode(texts[:64])  # warm-up, as a started indexer is warm
    started = time.perf_counter()
    embedder.encode(texts)
    return time.perf_counter() - started


def _stack(n: int, backend: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="refarch-e2e-") as tmp:
        env = {**os.environ, "REFARCH_HOME": os.path.join(tmp, "home"),
               "REFARCH_EMBED_BACKEND": backend}
        started = time.perf_counter()
        try:
            subprocess.run([*REFARCH, "up", "--detach", "--generate", str(n)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([*REFARCH, "sync-wait", "--timeout", "3600"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            synced = time.perf_counter() - started
            subprocess.run([*REFARCH, "search", "keep my coffee hot on the commute"], env=env,
                           check=True, stdout=subprocess.DEVNULL)
            searched = time.perf_counter() - started
        finally:
            subprocess.run([*REFARCH, "down"], env=env, stdout=subprocess.DEVNULL)
    return synced, searched


def main() -> None:
    """Time the stack's sync against raw sentence-transformers and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=6000)
    parser.add_argument("--backends", default="onnx")
    args = parser.parse_args()
    print(format_event("machine", cores=os.cpu_count(), load_1m=round(os.getloadavg()[0], 2)))
    raw = _raw_sentence_transformers(args.products)
    print(format_event("raw_sentence_transformers", texts=args.products, seconds=round(raw, 1),
                       texts_per_second=round(args.products / raw, 1)), flush=True)
    for backend in [b for b in args.backends.split(",") if b]:
        synced, searched = _stack(args.products, backend)
        print(format_event("stack_synced", backend=backend, products=args.products,
                           seconds_to_synced=round(synced, 1),
                           seconds_to_first_search=round(searched, 1),
                           raw_over_stack=round(raw / synced, 2), target=">= 1.5",
                           load_1m=round(os.getloadavg()[0], 2)), flush=True)


if __name__ == "__main__":
    main()
