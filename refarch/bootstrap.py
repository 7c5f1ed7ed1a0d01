"""The composition root: the one place that turns :class:`~refarch.settings.Settings` into parts.

Which database, queue, vector index and embedding model a process talks to is decided here and
nowhere else; the CLI, the services, the app, the notebooks and the tests ask this module for
them (``REFARCH_QUEUE``, ``REFARCH_INDEX`` and ``DATABASE_URL`` are read here, not elsewhere).
The one :class:`~refarch.pipeline.indexer.IndexerWorker` every caller runs is built by
:func:`make_indexer`.

Database roles. Migration 0002 creates least-privilege roles: ``refarch_app`` (read/write
products), ``refarch_relay`` (read products, consume the outbox) and ``refarch_indexer`` (read
products). On the local server (unix socket, trusted) each service connects as its role (the
app's status panel and dead-letter redrive too; migration 0005). With
``DATABASE_URL`` (an existing server, RDS) a role needs its own credentials: give its URL in
``REFARCH_APP_DATABASE_URL`` / ``REFARCH_RELAY_DATABASE_URL`` / ``REFARCH_INDEXER_DATABASE_URL``;
without one the service uses ``DATABASE_URL`` itself.

Ownership. A part this module builds belongs to the caller, who closes it (``close()``);
an indexer :func:`make_indexer` built closes the queue and index it made with itself.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from refarch.clock import SYSTEM_CLOCK, Clock
from refarch.errors import ConfigError, IndexServiceError
from refarch.settings import Settings

if TYPE_CHECKING:
    import psycopg
    from pinecone import Pinecone

    from refarch.db.server import LocalPostgres
    from refarch.embeddings import Embedder
    from refarch.index.port import VectorIndex
    from refarch.local.supervisor import ProcessSpec
    from refarch.pipeline.indexer import IndexerWorker
    from refarch.queue.port import Queue

Role = Literal["app", "relay", "indexer"]

#: The database role of each service (created by migration 0002).
ROLE_NAMES: dict[str, str] = {
    "app": "refarch_app",
    "relay": "refarch_relay",
    "indexer": "refarch_indexer",
}

#: Name of the pipeline's queue in the local queue tables.
LOCAL_QUEUE_NAME = "products"

# --- the database -------------------------------------------------------------------------


def local_postgres(settings: Settings) -> LocalPostgres | None:
    """The PostgreSQL server refarch runs itself for these settings (under ``REFARCH_HOME``,
    not started by this call), or None when ``DATABASE_URL`` names an existing server, which
    refarch then never starts, stops or changes."""
    if settings.database_url:
        return None
    from refarch.db.server import LocalPostgres

    return LocalPostgres.from_settings(settings)


def database_url(settings: Settings) -> str:
    """The owner's libpq URL: ``DATABASE_URL``, or the local server's (started if needed:
    initialised on first use, a no-op when it already runs). It creates no tables; run
    :func:`refarch.db.migrations.migrate` for that."""
    server = local_postgres(settings)
    if server is None:
        assert settings.database_url
        return settings.database_url
    return server.start().url


def role_url(settings: Settings, role: Role, admin_url: str | None = None) -> str:
    """The URL a service of ``role`` connects with (see the module docstring)."""
    explicit = {
        "app": settings.app_database_url,
        "relay": settings.relay_database_url,
        "indexer": settings.indexer_database_url,
    }[role]
    if explicit:
        return explicit
    url = admin_url or database_url(settings)
    if settings.database_url:
        return url
    return with_user(url, ROLE_NAMES[role])


def with_user(url: str, user: str) -> str:
    """``url`` connecting as ``user`` instead (any password in it is dropped: it is not theirs)."""
    params = conninfo_to_dict(url)
    params.pop("password", None)
    params["user"] = user
    return make_conninfo("", **params)


def connector(url: str, *, autocommit: bool = True) -> Callable[[], psycopg.Connection[Any]]:
    """A function that opens a new connection to ``url`` (services reconnect with it)."""
    from refarch.db.connect import connect

    def open_connection() -> psycopg.Connection[Any]:
        return connect(url, autocommit=autocommit)

    return open_connection


# --- the queue ----------------------------------------------------------------------------


def make_queue(settings: Settings, conninfo: str | None = None) -> Queue:
    """The queue ``settings.queue_backend`` names (``REFARCH_QUEUE``); the caller closes it.

    The local queue lives in the database ``conninfo`` names (a service's role URL; migration
    0003 grants the relay and indexer roles what they need), else the owner's URL, with the
    local server started if needed. See :func:`build_queue`.
    """
    if settings.queue_backend == "local" and not conninfo:
        conninfo = database_url(settings)
    return build_queue(settings, conninfo=conninfo)


def build_queue(settings: Settings, *, conninfo: str | None = None) -> Queue:
    """The queue of the settings, on a database that is already known (starts nothing).

    * ``local``: a :class:`~refarch.queue.local.PostgresQueue` on ``conninfo``, else
      ``DATABASE_URL``; :class:`~refarch.errors.ConfigError` without either.
    * ``sqs``: an :class:`~refarch.queue.sqs.SqsQueue` on ``REFARCH_SQS_QUEUE_URL`` and
      ``REFARCH_SQS_DLQ_URL`` in ``AWS_REGION``; its RedrivePolicy is checked against
      ``REFARCH_QUEUE_MAX_RECEIVES`` (one SQS call).
    """
    from refarch.queue.validation import MAX_VISIBILITY_SECONDS

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
        from refarch.queue.validation import MAX_RETENTION_SECONDS

        for variable, value in (
            ("REFARCH_QUEUE_RETENTION_SECONDS", settings.queue_retention_seconds),
            ("REFARCH_DLQ_RETENTION_SECONDS", settings.dlq_retention_seconds),
        ):
            if value > MAX_RETENTION_SECONDS:
                raise ConfigError(
                    f"{variable}={value} is above {MAX_RETENTION_SECONDS} seconds (14 days, "
                    "the SQS maximum)"
                )

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
            retention_seconds=settings.queue_retention_seconds,
            dlq_retention_seconds=settings.dlq_retention_seconds,
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


# --- the vector index ---------------------------------------------------------------------


def pinecone_client(settings: Settings, host: str | None = None) -> Pinecone:
    """A ``pinecone.Pinecone`` control-plane client for ``REFARCH_INDEX``.

    * ``local`` (default): the local server at ``http://REFARCH_INDEX_HOST:PORT`` (``host``
      overrides it, e.g. a test server) with ``REFARCH_INDEX_API_KEY``, or a placeholder
      when the server requires no key in particular;
    * ``pinecone``: Pinecone's cloud with ``PINECONE_API_KEY``.
    """
    from pinecone import Pinecone

    from refarch.index.client import LOCAL_PLACEHOLDER_KEY, local_url

    if settings.index_backend == "pinecone":
        if not settings.pinecone_api_key:
            raise ConfigError(
                "REFARCH_INDEX=pinecone needs PINECONE_API_KEY; set it, or use the local "
                "index (REFARCH_INDEX=local)"
            )
        return Pinecone(api_key=settings.pinecone_api_key, source_tag="refarch")
    if settings.index_backend != "local":
        raise ConfigError(f"REFARCH_INDEX={settings.index_backend!r} must be one of: local, pinecone")
    return Pinecone(
        api_key=settings.index_api_key or LOCAL_PLACEHOLDER_KEY,
        host=host or local_url(settings),
        source_tag="refarch",
    )


def make_index(
    settings: Settings,
    *,
    namespace: str = "",
    host: str | None = None,
    dimension: int | None = None,
    metric: str | None = None,
) -> VectorIndex:
    """The :class:`~refarch.index.port.VectorIndex` of the settings, created if missing (with
    the model's dimension and metric unless given); the caller closes it."""
    from refarch.index.client import ensure_index
    from refarch.index.port import PineconeVectorIndex
    from refarch.model_spec import DIMENSION, METRIC

    client = pinecone_client(settings, host=host)
    index = ensure_index(
        client, settings.index_name, dimension=dimension or DIMENSION, metric=metric or METRIC,
        region=settings.aws_region,
        unreachable_hint=(
            "start one with `refarch index-server` (or check REFARCH_INDEX_HOST / "
            "REFARCH_INDEX_PORT)" if settings.index_backend == "local" else None
        ),
    )
    return PineconeVectorIndex(index, namespace=namespace)


@contextmanager
def index_session(settings: Settings, *, namespace: str = "") -> Iterator[VectorIndex]:
    """The index for a one-off command: with the local backend, the server already running on
    ``REFARCH_INDEX_PORT`` or one started for the duration; closed at the end."""
    from refarch.index.process import local_index_session

    if settings.index_backend == "local":
        with local_index_session(settings) as url:
            index = make_index(settings, namespace=namespace, host=url)
            try:
                yield index
            finally:
                index.close()
        return
    index = make_index(settings, namespace=namespace)
    try:
        yield index
    finally:
        index.close()


def ensure_index(settings: Settings) -> None:
    """Create the configured index if it does not exist yet (dimension of the model)."""
    make_index(settings).close()


def index_host(settings: Settings) -> str:
    """The index's data-plane URL, the ``host`` the Pinecone SDK's ``Index(host=...)`` takes."""
    client = pinecone_client(settings)
    host = str(client.describe_index(settings.index_name).host)
    return host if "://" in host else f"https://{host}"


def index_server_process(settings: Settings) -> ProcessSpec | None:
    """The local index server as a supervised process, or None when the index is Pinecone."""
    if settings.index_backend != "local":
        return None
    from refarch.index.process import default_data_dir
    from refarch.local.supervisor import ProcessSpec

    data_dir = default_data_dir(settings)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {"REFARCH_INDEX_API_KEY": settings.index_api_key} if settings.index_api_key else {}
    if settings.index_allowed_hosts:
        env["REFARCH_INDEX_ALLOWED_HOSTS"] = ",".join(settings.index_allowed_hosts)
    return ProcessSpec(
        "index-server",
        [sys.executable, "-m", "refarch.index.server", "--data-dir", str(data_dir),
         "--host", settings.index_host, "--port", str(settings.index_port)],
        env=env, stop_timeout=60.0,
    )


def wait_for_index(settings: Settings, *, timeout: float, stop: threading.Event | None = None) -> None:
    """Wait until the local index server answers, then make sure the index exists."""
    from refarch.index.client import local_url
    from refarch.index.process import server_answers

    if settings.index_backend == "local":
        url = local_url(settings)
        deadline = time.monotonic() + timeout
        while not server_answers(url, timeout=0.5):
            if time.monotonic() > deadline:
                raise IndexServiceError(
                    f"the local index server did not answer on {url} within {timeout:.0f} s"
                )
            if stop is not None and stop.is_set():
                return
            time.sleep(0.1)
    ensure_index(settings)


# --- the model and the workers ------------------------------------------------------------


def make_embedder(settings: Settings) -> Embedder:
    """The embedding model of the settings (loaded once per process, lazily)."""
    from refarch.embeddings import get_embedder

    return get_embedder(settings)


def make_indexer(
    settings: Settings,
    *,
    queue: Queue | None = None,
    index: VectorIndex | None = None,
    embedder: Any = None,
    connect: Callable[[], psycopg.Connection[Any]] | None = None,
    batch_size: int | None = None,
    clock: Clock | None = None,
) -> IndexerWorker:
    """The indexer worker of the settings: the indexer role's database connection and queue,
    the configured index and model, the settings' batch size, visibility timeout and receive
    limit, and the system clock. Give any part to use it instead (a sandbox's queue, an
    embedder already loaded, a fake, a :class:`~refarch.fakes.FakeClock`): a part passed in
    stays the caller's; the parts built here are closed with the worker (``worker.close()``).
    """
    from refarch.embeddings import product_text
    from refarch.pipeline.indexer import IndexerWorker

    url = role_url(settings, "indexer") if queue is None or connect is None else ""
    owned: list[Callable[[], None]] = []
    if queue is None:
        queue = make_queue(settings, url)
        owned.append(queue.close)
    if index is None:
        index = make_index(settings)
        owned.append(index.close)
    return IndexerWorker(
        queue, index, embedder if embedder is not None else make_embedder(settings),
        connect or connector(url),
        text_of=product_text,
        batch_size=batch_size or settings.indexer_batch_size,
        visibility_timeout=settings.queue_visibility_timeout,
        max_receives=settings.queue_max_receives,
        on_close=owned,
        clock=clock or SYSTEM_CLOCK,
    )
