"""The one place that decides which vector index a process talks to.

Both backends are used through the real Pinecone SDK; only the host and key differ:

* ``REFARCH_INDEX=local`` (default): the local server at ``http://REFARCH_INDEX_HOST:PORT``
  with ``REFARCH_INDEX_API_KEY`` (any non-empty key when the server has none configured);
* ``REFARCH_INDEX=pinecone``: Pinecone's cloud with ``PINECONE_API_KEY``, serverless on AWS in
  ``AWS_REGION``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refarch.errors import ConfigError, IndexServiceError
from refarch.settings import Settings

if TYPE_CHECKING:
    from pinecone import Index, Pinecone

    from refarch.index.port import PineconeVectorIndex

#: What local clients send as API key when the server requires none in particular.
LOCAL_PLACEHOLDER_KEY = "refarch-local"


def local_url(settings: Settings) -> str:
    """The URL of the local index server for these settings."""
    return f"http://{settings.index_host}:{settings.index_port}"


def pinecone_client(settings: Settings, host: str | None = None) -> Pinecone:
    """A ``pinecone.Pinecone`` control-plane client for the configured backend.

    ``host`` overrides the local server's URL (e.g. a test server on another port).
    """
    from pinecone import Pinecone

    if settings.index_backend == "pinecone":
        if not settings.pinecone_api_key:
            raise ConfigError(
                "REFARCH_INDEX=pinecone needs PINECONE_API_KEY; set it, or use the local "
                "index (REFARCH_INDEX=local)"
            )
        return Pinecone(api_key=settings.pinecone_api_key, source_tag="refarch")
    return Pinecone(
        api_key=settings.index_api_key or LOCAL_PLACEHOLDER_KEY,
        host=host or local_url(settings),
        source_tag="refarch",
    )


def ensure_index(
    client: Pinecone,
    settings: Settings,
    name: str | None = None,
    dimension: int = 384,
    metric: str = "cosine",
) -> Index:
    """The data-plane ``Index`` called ``name`` (default ``REFARCH_INDEX_NAME``), created
    (serverless, ``dimension``, ``metric``) if it does not exist yet.

    Raises :class:`~refarch.errors.IndexServiceError` when an existing index has another
    dimension or metric, or the service cannot be reached.
    """
    from pinecone import ServerlessSpec
    from pinecone.errors.exceptions import PineconeConnectionError, PineconeError

    name = name or settings.index_name
    try:
        if client.has_index(name):
            model = client.describe_index(name)
            if model.dimension != dimension or model.metric != metric:
                raise IndexServiceError(
                    f"index {name!r} exists with dimension {model.dimension} and metric "
                    f"{model.metric}, but {dimension} and {metric} are needed; delete it or "
                    f"choose another name (REFARCH_INDEX_NAME)"
                )
        else:
            client.create_index(
                name=name, dimension=dimension, metric=metric,
                spec=ServerlessSpec(cloud="aws", region=settings.aws_region),
            )
        return client.index(name=name)  # the typed spelling of the SDK's client.Index(name)
    except PineconeConnectionError as exc:
        if settings.index_backend == "local":
            raise IndexServiceError(
                f"no index server answers at {client.config.host}; start one with "
                f"`refarch index-server` (or check REFARCH_INDEX_HOST / REFARCH_INDEX_PORT)"
            ) from exc
        raise IndexServiceError(f"cannot reach Pinecone: {exc}") from exc
    except PineconeError as exc:
        raise IndexServiceError(f"the vector index service failed: {exc}") from exc


def wait_for_count(index: Index, expected: int, namespace: str = "", timeout: float = 120.0) -> int:
    """Wait until ``namespace`` of ``index`` holds ``expected`` records; returns the count.

    The local server shows every acknowledged write at once; Pinecone's cloud is eventually
    consistent (usually seconds). Raises :class:`~refarch.errors.IndexServiceError` on timeout.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        stats = index.describe_index_stats()
        summary = stats.namespaces.get(namespace)
        count = int(summary.vector_count) if summary is not None else 0
        if count == expected:
            return count
        if time.monotonic() > deadline:
            raise IndexServiceError(
                f"namespace {namespace!r} holds {count} records, not {expected}, after "
                f"{timeout:.0f} s"
            )
        time.sleep(1.0)


def open_vector_index(
    settings: Settings,
    namespace: str = "",
    host: str | None = None,
    dimension: int = 384,
    metric: str = "cosine",
) -> PineconeVectorIndex:
    """The :class:`~refarch.index.port.VectorIndex` of the configured backend and index."""
    from refarch.index.port import PineconeVectorIndex

    client = pinecone_client(settings, host=host)
    index = ensure_index(client, settings, dimension=dimension, metric=metric)
    return PineconeVectorIndex(index, namespace=namespace)
