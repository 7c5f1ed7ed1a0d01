"""The one place that decides which queue runs: local (Postgres) or SQS, from the settings."""

from __future__ import annotations

from refarch.errors import ConfigError
from refarch.queue.port import Queue
from refarch.queue.validation import MAX_VISIBILITY_SECONDS
from refarch.settings import Settings

#: Name of the pipeline's queue in the local queue tables.
LOCAL_QUEUE_NAME = "products"


def make_queue(settings: Settings, *, conninfo: str | None = None) -> Queue:
    """Build the queue ``settings.queue_backend`` names (``REFARCH_QUEUE``).

    * ``local``: a :class:`~refarch.queue.local.PostgresQueue` on ``conninfo`` (the running
      local database), else ``settings.database_url``.
    * ``sqs``: an :class:`~refarch.queue.sqs.SqsQueue` on ``REFARCH_SQS_QUEUE_URL`` and
      ``REFARCH_SQS_DLQ_URL`` in ``AWS_REGION``; its RedrivePolicy is checked against
      ``REFARCH_QUEUE_MAX_RECEIVES`` (one SQS call).

    The caller closes the queue (``queue.close()``) when done.
    """
    if settings.queue_visibility_timeout > MAX_VISIBILITY_SECONDS:
        raise ConfigError(
            f"REFARCH_QUEUE_VISIBILITY_TIMEOUT={settings.queue_visibility_timeout} is above "
            f"{MAX_VISIBILITY_SECONDS:.0f} seconds (12 hours, the SQS maximum)"
        )
    if settings.queue_max_receives > 1000:
        raise ConfigError(
            f"REFARCH_QUEUE_MAX_RECEIVES={settings.queue_max_receives} is above 1000 "
            "(the SQS maximum)"
        )
    if settings.queue_backend == "local":
        from refarch.queue.local import PostgresQueue

        target = conninfo or settings.database_url
        if not target:
            raise ConfigError(
                "the local queue needs a database: start the local stack (refarch up) or set "
                "DATABASE_URL"
            )
        return PostgresQueue(
            target,
            name=LOCAL_QUEUE_NAME,
            max_receives=settings.queue_max_receives,
            visibility_timeout=settings.queue_visibility_timeout,
        )
    if settings.queue_backend == "sqs":
        import boto3

        from refarch.queue.sqs import SqsQueue

        missing = [
            name
            for name, value in (
                ("REFARCH_SQS_QUEUE_URL", settings.sqs_queue_url),
                ("REFARCH_SQS_DLQ_URL", settings.sqs_dlq_url),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"REFARCH_QUEUE=sqs needs {' and '.join(missing)}")
        assert settings.sqs_queue_url and settings.sqs_dlq_url
        queue = SqsQueue(
            settings.sqs_queue_url,
            settings.sqs_dlq_url,
            client=boto3.client("sqs", region_name=settings.aws_region),
            max_receives=settings.queue_max_receives,
            visibility_timeout=settings.queue_visibility_timeout,
        )
        queue.verify()
        return queue
    raise ConfigError(f"REFARCH_QUEUE={settings.queue_backend!r} must be one of: local, sqs")

