"""The embedding model on ONNX Runtime: the same vectors as sentence-transformers, no torch.

:class:`OnnxSentenceModel` offers the part of ``SentenceTransformer``'s interface that
:class:`refarch.embeddings.Embedder` uses (``encode``, ``tokenizer``, ``max_seq_length``,
``get_embedding_dimension``), over an export made by :mod:`refarch.onnx_model`. Tokenization is
the model's own fast tokenizer (``tokenizers``), truncated at the model's maximum sequence
length like sentence-transformers; each call sorts its texts by length so batches carry little
padding; pooling and normalization run inside the graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refarch.onnx_model import INPUT_NAMES, TOKENIZER_FILE, ExportedModel


class OnnxSentenceModel:
    """An exported sentence-transformers model run by onnxruntime (CPU)."""

    #: Where it runs (reported in the model_loaded log event, like torch's device).
    device = "cpu (onnxruntime)"

    def __init__(
        self, exported: ExportedModel, *, precision: str = "fp32", threads: int | None = None
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: the services share a few cores with Postgres,
        # the relay and the index server, and spinning would take CPU from them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(exported.weights(precision)), options, providers=["CPUExecutionProvider"]
        )
        self.max_seq_length = exported.max_seq_length
        self._dimension = exported.dimension
        self.precision = precision
        self.threads = threads
        tokenizer = Tokenizer.from_file(str(exported.directory / TOKENIZER_FILE))
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        # Pad to the longest text of each batch (the saved tokenizer may pad to a fixed length).
        pad_id = tokenizer.token_to_id("[PAD]") or 0
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
        self._tokenizer = tokenizer
        self._counter = Tokenizer.from_file(str(exported.directory / TOKENIZER_FILE))
        self._counter.no_padding()

    def get_embedding_dimension(self) -> int:
        """Length of the vectors."""
        return self._dimension

    def tokenizer(self, texts: list[str], **options: Any) -> dict[str, list[list[int]]]:
        """Token ids per text (special tokens included), at most ``max_length`` of them."""
        self._counter.enable_truncation(max_length=int(options["max_length"]))
        return {"input_ids": [e.ids for e in self._counter.encode_batch(list(texts))]}

    def encode(self, texts: list[str], **options: Any) -> np.ndarray:
        """Normalized float32 vectors of ``texts``, in their order (``batch_size`` per run)."""
        batch_size = int(options.get("batch_size", 32))
        out = np.empty((len(texts), self._dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            encoded = self._tokenizer.encode_batch([texts[i] for i in rows])
            feed = {
                name: np.array([getattr(e, attr) for e in encoded], dtype=np.int64)
                for name, attr in zip(INPUT_NAMES, ("ids", "attention_mask", "type_ids"), strict=True)
            }
            out[rows] = self._session.run(None, feed)[0]
        return out
