"""The ONNX Runtime backend gives the vectors sentence-transformers gives (issue: embeddings at
the CPU's speed): on 1,000 product texts and 200 queries every pair has cosine >= 0.9999, and
the top 10 products of each labelled query are the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refarch.catalog import generate_products, labelled_queries
from refarch.embeddings import Embedder, get_embedder, load_embedder, product_text
from refarch.errors import EmbeddingError
from refarch.settings import Settings
from tests.support.paths import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair() -> tuple[Embedder, Embedder]:
    settings = Settings.from_env({})
    onnx = get_embedder(settings)
    torch = get_embedder(Settings.from_env({"REFARCH_EMBED_BACKEND": "sentence-transformers"}))
    assert (onnx.backend, torch.backend) == ("onnx", "sentence-transformers")
    return onnx, torch


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [product_text(p) for p in generate_products(1000, seed=7)]


def queries() -> list[str]:
    """200 queries: every labelled shopper query (140), then product names as people paste them."""
    labelled = [query for query, _, _ in labelled_queries()]
    names = [p.name for p in generate_products(200 - len(labelled), seed=11)]
    return labelled + names


def test_product_vectors_match(pair: tuple[Embedder, Embedder], texts: list[str]) -> None:
    onnx, torch = pair
    a, b = onnx.encode(texts), torch.encode(texts)
    assert a.shape == b.shape == (1000, 384) and a.dtype == np.float32
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.9999, f"worst {cosines.min():.6f} at {int(cosines.argmin())}"


def test_query_vectors_and_top10_match(pair: tuple[Embedder, Embedder], texts: list[str]) -> None:
    onnx, torch = pair
    asked = queries()
    assert len(asked) == 200
    qa = np.stack([onnx.encode_query(q) for q in asked])
    qb = np.stack([torch.encode_query(q) for q in asked])
    assert (qa * qb).sum(axis=1).min() >= 0.9999
    pa, pb = onnx.encode(texts), torch.encode(texts)
    for i, query in enumerate(asked):
        top_a = list(np.argsort(-(pa @ qa[i]), kind="stable")[:10])
        top_b = list(np.argsort(-(pb @ qb[i]), kind="stable")[:10])
        assert set(top_a) == set(top_b), query


def test_truncation_and_empty_text_are_checked_the_same(pair: tuple[Embedder, Embedder]) -> None:
    onnx, torch = pair
    long_text = "waterproof " * 400
    assert onnx.max_seq_length == torch.max_seq_length == 256
    assert onnx.token_counts([long_text, "a tent"]) == torch.token_counts([long_text, "a tent"])
    with pytest.warns(UserWarning, match="truncated"):
        vector = onnx.encode([long_text])[0]
    assert float(vector @ torch.encode([long_text])[0]) >= 0.9999


def test_int8_is_close_but_not_identical(pair: tuple[Embedder, Embedder], texts: list[str]) -> None:
    onnx, _ = pair
    int8 = get_embedder(Settings.from_env({"REFARCH_EMBED_PRECISION": "int8"}))
    a, b = onnx.encode(texts[:200]), int8.encode(texts[:200])
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.98 and not np.allclose(a, b)


def test_an_incomplete_export_directory_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="not an ONNX export made by refarch"):
        load_embedder("all-MiniLM-L6-v2", onnx_dir=tmp_path)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env={**os.environ, **env}, cwd=ROOT,
    )


def test_the_onnx_path_imports_no_torch(tmp_path: Path) -> None:
    out = tmp_path / "export"
    made = subprocess.run(
        [sys.executable, "-m", "refarch.cli", "model", "export", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["files"] == {"fp32": str(out / "model.onnx")}
    run = _python(
        "import sys, json\n"
        "from refarch.embeddings import get_embedder\n"
        "from refarch.settings import Settings\n"
        "v = get_embedder(Settings.from_env()).encode_query('travel mug')\n"
        "print(json.dumps([len(v), [m for m in ('torch', 'sentence_transformers', 'transformers')"
        " if m in sys.modules]]))\n",
        REFARCH_ONNX_DIR=str(out),
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [384, []]


def test_without_torch_or_an_export_the_error_says_what_to_do(tmp_path: Path) -> None:
    run = _python(
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'sentence_transformers'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from refarch.embeddings import load_embedder\n"
        f"load_embedder('all-MiniLM-L6-v2', models_dir=__import__('pathlib').Path({str(tmp_path)!r}))\n"
    )
    assert run.returncode != 0
    assert "EmbeddingError" in run.stderr and "refarch model export" in run.stderr
    assert "REFARCH_ONNX_DIR" in run.stderr and "REFARCH_EMBED_BACKEND=sentence-transformers" in run.stderr
