"""The ONNX Runtime backend gives the vectors sentence-transformers gives (issue: embeddings at
the CPU's speed): on 1,000 product texts and 200 queries every pair has cosine >= 0.9999, and
the top 10 products of each labelled query are the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refarch.catalog import generate_products, labelled_queries
from refarch.embeddings import Embedder, get_embedder, load_embedder, product_text
from refarch.errors import EmbeddingError
from refarch.settings import Settings

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
