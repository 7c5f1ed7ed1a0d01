"""The fakes the pipeline unit tests use, where no contract suite covers them: the embedder
behaves like the real one around its (hashed bag-of-words) model, and the products database
versions rows and captures changes as the migrations' triggers do.

(FakeQueue runs tests/contract/test_queue_contract.py; FakeVectorIndex the port tests in
tests/contract/index/test_port.py.)
"""

from __future__ import annotations

import warnings

import numpy as np
import psycopg
import pytest

from refarch.embeddings import Embedder, TextTruncatedWarning
from refarch.errors import EmptyTextError, InputError
from refarch.fakes import FakeEmbedder, FakeProductsDatabase
from refarch.pipeline.indexer import read_rows


def test_the_fake_embedder_is_deterministic_normalized_and_keeps_similar_texts_close() -> None:
    embedder = FakeEmbedder()
    assert isinstance(embedder, Embedder) and embedder.dimension == 384
    vectors = embedder.encode(["Red travel mug", "red TRAVEL mug!", "a red mug for travel",
                               "blue mountain bicycle"])
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors[0], vectors[1])  # case and punctuation do not matter
    assert vectors[0] @ vectors[2] > 0.5 > abs(float(vectors[0] @ vectors[3]))
    assert np.array_equal(FakeEmbedder().encode_query("red travel mug"), vectors[0])
    assert embedder.texts[:2] == ["Red travel mug", "red TRAVEL mug!"]


def test_the_fake_embedder_refuses_what_the_real_one_refuses() -> None:
    embedder = FakeEmbedder()
    with pytest.raises(EmptyTextError, match="position"):
        embedder.encode(["fine", "   "])
    with pytest.raises(EmptyTextError):
        embedder.encode_query(" ")
    with pytest.raises(InputError, match="encode_query"):
        embedder.encode("one text")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedder.encode(["word " * 300])
    assert any(issubclass(w.category, TextTruncatedWarning) for w in caught)


def test_the_fake_database_versions_rows_like_the_triggers() -> None:
    db = FakeProductsDatabase()
    a, b = db.insert("A"), db.insert("B", price=5)
    assert [r["op"] for r in db.outbox] == ["upsert", "upsert"]
    version = db.products[a]["search_version"]
    db.update(a, price=10)  # the same value: nothing changes
    assert db.products[a]["version"] == version and len(db.outbox) == 2
    db.update(a, last_updated=db.clock.now())  # not an indexed column: version only
    assert db.products[a]["version"] > version == db.products[a]["search_version"]
    assert len(db.outbox) == 2
    db.update(a, description="new text")
    assert db.products[a]["search_version"] == db.products[a]["version"]
    assert db.outbox[-1] == {**db.outbox[-1], "product_id": a, "op": "upsert",
                             "version": db.products[a]["search_version"]}
    db.delete(b)
    assert db.outbox[-1]["op"] == "delete" and db.outbox[-1]["version"] > db.products[a]["version"]
    with db.connect() as conn:
        rows = read_rows(conn, [a, b])
        assert list(rows) == [a] and rows[a].description == "new text"
        with pytest.raises(NotImplementedError, match="does not understand"):
            conn.execute("SELECT * FROM products")
    db.down = True
    with pytest.raises(psycopg.OperationalError):
        db.connect()
