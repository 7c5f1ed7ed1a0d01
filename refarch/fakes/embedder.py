"""A deterministic embedder that loads no model: hashed bag of words.

:class:`FakeEmbedder` *is* a :class:`refarch.embeddings.Embedder` (so ``encode``,
``encode_query``, their checks, errors, batching and truncation warnings are the real code)
around :class:`BagOfWordsModel` instead of a sentence-transformers model. Each word (lowercased
letters and digits) adds a signed 1 to a dimension chosen by its hash, and every vector is
normalized: texts sharing words are close, the same text always gets the same vector (in every
process: the hash is BLAKE2b, not Python's salted ``hash``), and empty text raises
:class:`~refarch.errors.EmptyTextError` exactly as the real embedder does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from refarch.embeddings import DEFAULT_BATCH_SIZE, Embedder

#: Tokens (special tokens included) the fake model reads, like all-MiniLM-L6-v2.
MAX_SEQ_LENGTH = 256
# A [CLS] and a [SEP] around every text, as BERT tokenizers add.
_SPECIAL_TOKENS = 2
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The tokens of ``text``: lowercased runs of letters and digits (or the text itself)."""
    found = _WORD.findall(text.lower())
    return found or ([text.strip()] if text.strip() else [])


def _bucket(word: str, dimension: int) -> tuple[int, float]:
    digest = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "big")
    return digest % dimension, 1.0 if digest >> 63 else -1.0


class _Tokenizer:
    """Counts tokens the way :meth:`Embedder.token_counts` asks a Hugging Face tokenizer to."""

    def __call__(self, texts: Sequence[str], *, max_length: int, **_: Any) -> dict[str, list[list[int]]]:
        return {
            "input_ids": [
                list(range(min(len(words(text)) + _SPECIAL_TOKENS, max_length))) for text in texts
            ]
        }


class BagOfWordsModel:
    """The parts of a ``SentenceTransformer`` that :class:`Embedder` uses."""

    def __init__(self, dimension: int = 384, max_seq_length: int = MAX_SEQ_LENGTH) -> None:
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        self.tokenizer = _Tokenizer()
        self.device = "cpu"

    def get_embedding_dimension(self) -> int:
        """The vector length."""
        return self.dimension

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        """Normalized hashed bags of the first ``max_seq_length`` tokens' words."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        keep = self.max_seq_length - _SPECIAL_TOKENS  # what is left after truncation
        for row, text in enumerate(texts):
            for word in words(text)[:keep]:
                column, sign = _bucket(word, self.dimension)
                out[row, column] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
        return out


class FakeEmbedder(Embedder):
    """An :class:`Embedder` over :class:`BagOfWordsModel`; ``texts`` records what it embedded."""

    def __init__(self, dimension: int = 384, *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(cast(Any, BagOfWordsModel(dimension)), "fake-bag-of-words", batch_size=batch_size)
        #: Every text embedded (queries included), in order: to check what was, or was not, embedded.
        self.texts: list[str] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False
    ) -> np.ndarray:
        """:meth:`Embedder.encode`, recording the texts."""
        vectors = super().encode(texts, batch_size=batch_size, progress=progress)
        self.texts.extend(texts)
        return vectors
