"""Pinecone SDK helpers shared by both backends: the local server's URL, creating an index
if it is missing, waiting for a count.

Which backend a process talks to is decided in :mod:`refarch.bootstrap`
(:func:`~refarch.bootstrap.pinecone_client`, :func:`~refarch.bootstrap.make_index`); both
are driven through the real Pinecone SDK, only the host and key differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refarch.errors import IndexServiceError
from refarch.settings import Settings

if TYPE_CHECKING:
    from pinecone import Index, Pinecone

#: What local clients send as API key when the server requires none in particular.
LOCAL_PLACEHOLDER_KEY = "refarch-local"


def local_url(settings: Settings) -> str:
    """The URL of the local index server for these settings."""
    return f"http://{settings.index_host}:{settings.index_port}"


def ensure_index(
    client: Pinecone,
    name: str,
    *,
    dimension: int,
    metric: str,
    region: str,
    unreachable_hint: str | None = None,
) -> Index:
    """The data-plane ``Index`` called ``name``, created (serverless on AWS in ``region``,
    ``dimension``, ``metric``) if it does not exist yet.

    Raises :class:`~refarch.errors.IndexServiceError` when an existing index has another
    dimension or metric, or the service cannot be reached (``unreachable_hint`` says what to
    do then, e.g. how to start the local server).
    """
    from pinecone import ServerlessSpec
    from pinecone.errors.exceptions import PineconeConnectionError, PineconeError

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
                spec=ServerlessSpec(cloud="aws", region=region),
            )
        return client.index(name=name)  # the typed spelling of the SDK's client.Index(name)
    except PineconeConnectionError as exc:
        if unreachable_hint:
            raise IndexServiceError(
                f"no index server answers at {client.config.host}; {unreachable_hint}"
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
