"""The queue settings and the one function that picks the queue backend."""

from __future__ import annotations

import pytest

from refarch.bootstrap import LOCAL_QUEUE_NAME, build_queue
from refarch.errors import ConfigError
from refarch.queue.local import PostgresQueue
from refarch.settings import Settings


def test_queue_settings_have_local_defaults() -> None:
    s = Settings.from_env({})
    assert (s.queue_backend, s.sqs_dlq_url) == ("local", None)
    assert (s.queue_max_receives, s.queue_visibility_timeout) == (5, 60)


def test_queue_settings_are_read_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "REFARCH_QUEUE": "sqs",
            "REFARCH_SQS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/1/products.fifo",
            "REFARCH_SQS_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/1/products-dlq.fifo",
            "REFARCH_QUEUE_MAX_RECEIVES": "3",
            "REFARCH_QUEUE_VISIBILITY_TIMEOUT": "120",
        }
    )
    assert s.sqs_dlq_url == "https://sqs.eu-west-1.amazonaws.com/1/products-dlq.fifo"
    assert (s.queue_max_receives, s.queue_visibility_timeout) == (3, 120)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"REFARCH_QUEUE_MAX_RECEIVES": "0"}, "REFARCH_QUEUE_MAX_RECEIVES=0 is below"),
        ({"REFARCH_QUEUE_MAX_RECEIVES": "five"}, "REFARCH_QUEUE_MAX_RECEIVES='five'"),
        ({"REFARCH_QUEUE_VISIBILITY_TIMEOUT": "0"}, "REFARCH_QUEUE_VISIBILITY_TIMEOUT=0"),
        ({"REFARCH_QUEUE_VISIBILITY_TIMEOUT": "1.5"}, "REFARCH_QUEUE_VISIBILITY_TIMEOUT='1.5'"),
    ],
)
def test_bad_queue_settings_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_env(env)


def test_the_local_queue_uses_the_given_database_and_the_settings() -> None:
    settings = Settings.from_env(
        {"REFARCH_QUEUE_MAX_RECEIVES": "7", "REFARCH_QUEUE_VISIBILITY_TIMEOUT": "45"}
    )
    q = build_queue(settings, conninfo="host=/nowhere dbname=refarch")
    try:
        assert isinstance(q, PostgresQueue)  # built lazily: no connection yet
        assert (q.name, q.max_receives, q.visibility_timeout) == (LOCAL_QUEUE_NAME, 7, 45.0)
    finally:
        q.close()


def test_the_local_queue_falls_back_to_database_url() -> None:
    q = build_queue(Settings.from_env({"DATABASE_URL": "postgresql://db.example/refarch"}))
    assert isinstance(q, PostgresQueue)
    q.close()


def test_the_local_queue_needs_a_database() -> None:
    with pytest.raises(ConfigError, match="needs a database"):
        build_queue(Settings.from_env({}))


def test_sqs_needs_both_queue_urls() -> None:
    with pytest.raises(ConfigError, match="REFARCH_SQS_QUEUE_URL and REFARCH_SQS_DLQ_URL"):
        build_queue(Settings.from_env({"REFARCH_QUEUE": "sqs"}))
    with pytest.raises(ConfigError, match="needs REFARCH_SQS_DLQ_URL$"):
        build_queue(Settings.from_env({"REFARCH_QUEUE": "sqs", "REFARCH_SQS_QUEUE_URL": "u"}))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"queue_visibility_timeout": 43_201}, "REFARCH_QUEUE_VISIBILITY_TIMEOUT=43201 is above"),
        ({"queue_max_receives": 1001}, "REFARCH_QUEUE_MAX_RECEIVES=1001 is above 1000"),
    ],
)
def test_limits_beyond_sqs_are_config_errors(changes: dict[str, int], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_queue(Settings.from_env({}).with_(**changes), conninfo="dbname=x")


def test_retention_defaults_match_sqs_and_the_cloud_stack() -> None:
    from refarch.deploy.program import load_infra
    from refarch.queue.validation import DEFAULT_DLQ_RETENTION_SECONDS, DEFAULT_RETENTION_SECONDS

    s = Settings.from_env({})
    cloud = load_infra("config").StackConfig()
    day = 86_400
    assert s.queue_retention_seconds == DEFAULT_RETENTION_SECONDS == cloud.queue_retention_days * day
    assert s.dlq_retention_seconds == DEFAULT_DLQ_RETENTION_SECONDS == cloud.dlq_retention_days * day
    assert (s.queue_retention_seconds, s.dlq_retention_seconds) == (4 * day, 14 * day)
    q = build_queue(s, conninfo="dbname=x")
    try:
        assert isinstance(q, PostgresQueue)
        assert (q.retention_seconds, q.dlq_retention_seconds) == (4 * day, 14 * day)
    finally:
        q.close()


def test_retention_is_read_from_the_environment() -> None:
    s = Settings.from_env({"REFARCH_QUEUE_RETENTION_SECONDS": "60",
                           "REFARCH_DLQ_RETENTION_SECONDS": "7200"})
    q = build_queue(s, conninfo="dbname=x")
    try:
        assert isinstance(q, PostgresQueue)
        assert (q.retention_seconds, q.dlq_retention_seconds) == (60.0, 7200.0)
    finally:
        q.close()


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"REFARCH_QUEUE_RETENTION_SECONDS": "59"}, "REFARCH_QUEUE_RETENTION_SECONDS=59 is below"),
        ({"REFARCH_DLQ_RETENTION_SECONDS": "2d"}, "REFARCH_DLQ_RETENTION_SECONDS='2d'"),
    ],
)
def test_bad_retention_settings_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Settings.from_env(env)


@pytest.mark.parametrize("field", ["queue_retention_seconds", "dlq_retention_seconds"])
def test_retention_beyond_14_days_is_a_config_error(field: str) -> None:
    variable = "REFARCH_" + field.upper()
    with pytest.raises(ConfigError, match=f"{variable}=1209601 is above 1209600 seconds"):
        build_queue(Settings.from_env({}).with_(**{field: 1_209_601}), conninfo="dbname=x")


@pytest.mark.parametrize("value", [59, 1_209_601, float("nan"), True])
def test_the_local_queue_refuses_a_retention_sqs_would_refuse(value: float) -> None:
    from refarch.errors import InputError

    with pytest.raises(InputError, match="use 60 to 1209600 seconds"):
        PostgresQueue("dbname=x", retention_seconds=value)
    with pytest.raises(InputError, match="dlq_retention_seconds="):
        PostgresQueue("dbname=x", dlq_retention_seconds=value)
