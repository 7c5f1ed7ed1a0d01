"""The one place that turns :class:`~refarch.settings.Settings` into running backends.

Which database, queue, vector index and embedding model a process talks to is decided here and
nowhere else; services, commands, notebooks and the app ask this module for them.

Database roles. Migration 0002 creates least-privilege roles: ``refarch_app`` (read/write
products), ``refarch_relay`` (read products, consume the outbox) and ``refarch_indexer`` (read
products). On the local server (unix socket, trusted) each service connects as its role. With
``DATABASE_URL`` (an existing server, RDS) a role needs its own credentials: give its URL in
``REFARCH_APP_DATABASE_URL`` / ``REFARCH_RELAY_DATABASE_URL`` / ``REFARCH_INDEXER_DATABASE_URL``;
without one the service uses ``DATABASE_URL`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from refarch.settings import Settings

Role = Literal["app", "relay", "indexer"]

#: The database role of each service (created by migration 0002).
ROLE_NAMES: dict[str, str] = {
    "app": "refarch_app",
    "relay": "refarch_relay",
    "indexer": "refarch_indexer",
}


def database_url(settings: Settings) -> str:
    """The owner's libpq URL: ``DATABASE_URL``, or the local server (started if needed)."""
    from refarch.db.connect import ensure_database

    return ensure_database(settings)


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
    return make_conninfo(**params)


def connector(url: str, *, autocommit: bool = True) -> Callable[[], psycopg.Connection[Any]]:
    """A function that opens a new connection to ``url`` (services reconnect with it)."""
    from refarch.db.connect import connect

    def open_connection() -> psycopg.Connection[Any]:
        return connect(url, autocommit=autocommit)

    return open_connection


def make_queue(settings: Settings, conninfo: str | None = None) -> Any:
    """The queue the settings choose. The local queue lives in the database: ``conninfo``
    (a service's role URL; migration 0003 grants the relay and indexer roles what they need),
    else the owner's URL."""
    from refarch.queue.wiring import make_queue as build

    if settings.queue_backend == "local":
        return build(settings, conninfo=conninfo or database_url(settings))
    return build(settings)


def make_embedder(settings: Settings) -> Any:
    """The embedding model of the settings (loaded once per process, lazily)."""
    from refarch.embeddings import get_embedder

    return get_embedder(settings)


def product_text(product: Any) -> str:
    """The text that is embedded for a product (see :func:`refarch.embeddings.product_text`)."""
    from refarch.embeddings import product_text as text_of

    return text_of(product)


def index_server_process(settings: Settings) -> Any:
    """The local index server as a supervised process, or None when the index is Pinecone."""
    if settings.index_backend != "local":
        return None
    import sys

    from refarch.index.process import default_data_dir
    from refarch.local.supervisor import ProcessSpec

    data_dir = default_data_dir(settings)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {"REFARCH_INDEX_API_KEY": settings.index_api_key} if settings.index_api_key else {}
    return ProcessSpec(
        "index-server",
        [sys.executable, "-m", "refarch.index.server", "--data-dir", str(data_dir),
         "--host", settings.index_host, "--port", str(settings.index_port)],
        env=env, stop_timeout=60.0,
    )


def make_index(settings: Settings) -> Any:
    """The :class:`~refarch.index.port.VectorIndex` of the settings (created if missing)."""
    from refarch.index.client import open_vector_index
    from refarch.model_spec import DIMENSION, METRIC

    return open_vector_index(settings, dimension=DIMENSION, metric=METRIC)


def ensure_index(settings: Settings) -> None:
    """Create the configured index if it does not exist yet (dimension of the model)."""
    make_index(settings)


def index_host(settings: Settings) -> str:
    """The index's data-plane URL, the ``host`` the Pinecone SDK's ``Index(host=...)`` takes."""
    from refarch.index.client import pinecone_client

    client = pinecone_client(settings)
    host = str(client.describe_index(settings.index_name).host)
    return host if "://" in host else f"https://{host}"


def wait_for_index(settings: Settings, *, timeout: float, stop: Any = None) -> None:
    """Wait until the local index server answers, then make sure the index exists."""
    import time

    from refarch.errors import IndexServiceError
    from refarch.index.client import local_url
    from refarch.index.process import server_answers

    if settings.index_backend == "local":
        url = local_url(settings)
        deadline = time.monotonic() + timeout
        while not server_answers(url, timeout=0.5):
            if time.monotonic() > deadline:
                raise IndexServiceError(f"the local index server did not answer on {url} within {timeout:.0f} s")
            if stop is not None and stop.is_set():
                return
            time.sleep(0.1)
    ensure_index(settings)
