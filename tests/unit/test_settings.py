from __future__ import annotations

from pathlib import Path

import pytest

from refarch.errors import ConfigError
from refarch.settings import DEFAULT_MODEL, Settings


def test_defaults_are_local_and_offline(tmp_path: Path) -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.index_backend == "local"
    assert settings.queue_backend == "local"
    assert settings.model == DEFAULT_MODEL
    assert settings.home.is_absolute() and settings.home.name == ".refarch"


def test_reads_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "REFARCH_HOME": str(tmp_path),
            "DATABASE_URL": "postgresql://u@h/db",
            "REFARCH_EMBED_BATCH_SIZE": "128",
            "REFARCH_PG_TCP": "yes",
            "REFARCH_INDEX": "Pinecone",
        }
    )
    assert settings.home == tmp_path
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.embed_batch_size == 128
    assert settings.pg_tcp is True
    assert settings.index_backend == "pinecone"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFARCH_EMBED_BATCH_SIZE": "lots"}, "REFARCH_EMBED_BATCH_SIZE='lots' is not a whole number"),
        ({"REFARCH_EMBED_BATCH_SIZE": "0"}, "below the minimum"),
        ({"REFARCH_PG_TCP": "maybe"}, "REFARCH_PG_TCP='maybe' is not a boolean"),
        ({"REFARCH_QUEUE": "kafka"}, "REFARCH_QUEUE='kafka' must be one of: local, sqs"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.model = "other"  # type: ignore[misc]
    assert settings.with_(model="other").model == "other"
