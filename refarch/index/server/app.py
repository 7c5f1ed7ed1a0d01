"""The HTTP API: Pinecone's REST control and data planes (API version 2026-07), on Starlette.

Control plane (the client's ``host``): ``/indexes`` (list, create), ``/indexes/{name}``
(describe, configure, delete). Each index's data plane lives under ``/data/{name}`` on the same
server: ``describe`` returns that URL as the index's ``host``, built from the ``Host`` header the
client used, so the SDK's ``pc.Index(name)`` finds it like a cloud host. Data-plane routes are
Pinecone's: ``/vectors/upsert``, ``/query``, ``/vectors/fetch``, ``/vectors/fetch_by_metadata``,
``/vectors/update``, ``/vectors/delete``, ``/describe_index_stats``, ``/vectors/list``,
``/namespaces``. Errors come back as Pinecone sends them (see
:mod:`refarch.index.server.api_errors`). ``/_refarch/*`` are local extensions (health, status,
forced snapshot) that Pinecone does not have.

Handlers read bodies within their route's size limit and parse JSON with orjson, in the thread
pool when a body is large (:mod:`refarch.index.server.limits`), and do their work in the thread
pool, so a slow request never blocks the event loop; only quick queries (unfiltered, small
``top_k``) are answered on the loop itself, which saves the two thread hand-offs that dominate
their latency. Responses are capped in size (a query 4 MB, as Pinecone's).
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from refarch.index.filters import describe
from refarch.index.server import faults, limits
from refarch.index.server import requests as rq
from refarch.index.server.api_errors import ApiError, bad_request
from refarch.index.server.engine import IndexConfig, IndexEngine, Match
from refarch.index.server.hosts import AllowedHosts, HostCheckMiddleware
from refarch.index.server.registry import INDEX_NAME, Registry
from refarch.logs import event

log = logging.getLogger("refarch.index.server")

API_VERSION = "2026-07"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_UNSUPPORTED = (
    "is not supported by the local index server, which implements dense vector indexes "
    "(created with dimension and metric); see docs/vector-index.md"
)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload, option=_JSON_OPTIONS), status_code=status,
        media_type="application/json", headers=headers,
    )


def _respond(payload: dict[str, Any] | bytes) -> Response:
    """A 200 with ``payload``: a JSON-able dict, or JSON already encoded (a capped response)."""
    if isinstance(payload, bytes):
        return Response(payload, media_type="application/json")
    return _json(payload)


class _ApiKeyMiddleware:
    """Reject requests without the API key (any non-empty key when none is configured)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/_refarch/health":
            await self.app(scope, receive, send)
            return
        key = next((v for k, v in scope["headers"] if k == b"api-key"), b"")
        if not key.strip() or (
            self.api_key is not None and not hmac.compare_digest(key, self.api_key)
        ):
            error = ApiError(401, "Invalid API Key" if key else "No API key was provided")
            await _json(error.body(), 401)(scope, receive, send)
            return

        async def send_with_version(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-pinecone-api-version", API_VERSION.encode())]
            await send(message)

        await self.app(scope, receive, send_with_version)


def _token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def _untoken(raw: Any, namespace: str) -> str | None:
    token = rq.pagination_token(raw)
    if token is None:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        if payload["ns"] != namespace:
            raise ValueError
        return str(payload["after"])
    except Exception:  # noqa: BLE001 - any malformed token is the client's error
        raise bad_request(f"Invalid pagination token {token[:40]!r}") from None


def _display(namespace: str) -> str:
    return "__default__" if namespace == "" else namespace


def _index_model(engine: IndexEngine, request: Request) -> dict[str, Any]:
    config = engine.config
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return {
        "name": config.name,
        "status": {"ready": True, "state": "Ready"},
        "schema": {"fields": {"_values": {
            "type": "dense_vector", "dimension": config.dimension, "metric": config.metric,
        }}},
        "deployment": {"deployment_type": "managed", "cloud": config.cloud,
                       "region": config.region},
        "deletion_protection": config.deletion_protection,
        "host": f"{request.url.scheme}://{host}/data/{config.name}",
        "tags": config.tags,
        "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
    }


# -- control plane ---------------------------------------------------------------------------


def _parse_create(body: dict[str, Any]) -> IndexConfig:
    for key in ("source_collection", "source_backup_id", "cmek_id"):
        if body.get(key) is not None:
            raise bad_request(f"{key} {_UNSUPPORTED}")
    name = body.get("name") or f"index-{uuid.uuid4().hex[:8]}"
    if not isinstance(name, str) or not INDEX_NAME.match(name):
        raise bad_request(
            f"Invalid index name {describe(name)}: use 1-45 lowercase letters, digits and hyphens, "
            f"starting and ending with a letter or digit"
        )
    schema = body.get("schema")
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, dict) or not fields:
        raise bad_request("schema.fields is required and must declare the dense vector field")
    if set(fields) != {"_values"}:
        raise bad_request(
            f"A schema with fields {sorted(fields)} declares a document index, which "
            f"{_UNSUPPORTED}"
        )
    field = fields["_values"]
    if not isinstance(field, dict) or field.get("type") != "dense_vector":
        kind = field.get("type") if isinstance(field, dict) else field
        raise bad_request(f"A {describe(kind)} field {_UNSUPPORTED}")
    dimension = field.get("dimension")
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not (
        1 <= dimension <= rq.MAX_DIMENSION
    ):
        raise bad_request(f"dimension must be a whole number from 1 to {rq.MAX_DIMENSION:,}, "
                          f"got {describe(dimension)}")
    metric = field.get("metric") or "cosine"
    if metric not in ("cosine", "dotproduct", "euclidean"):
        raise bad_request(f"metric must be one of cosine, dotproduct, euclidean; got {describe(metric)}")
    deployment = body.get("deployment") or {"deployment_type": "managed"}
    if not isinstance(deployment, dict) or deployment.get("deployment_type", "managed") != "managed":
        kind = deployment.get("deployment_type") if isinstance(deployment, dict) else deployment
        raise bad_request(f"deployment_type {describe(kind)} {_UNSUPPORTED}; use a managed "
                          f"(serverless) deployment")
    protection = body.get("deletion_protection") or "disabled"
    if protection not in ("enabled", "disabled"):
        raise bad_request(f"deletion_protection must be 'enabled' or 'disabled', got {describe(protection)}")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise bad_request("tags must be an object of string values")
    where = {key: deployment.get(key) or default
             for key, default in (("cloud", "aws"), ("region", "us-east-1"))}
    for key, value in where.items():
        if not isinstance(value, str) or len(value) > 64:
            raise bad_request(f"deployment.{key} must be a string of at most 64 characters, "
                              f"got {describe(value)}")
    return IndexConfig(
        name=name, dimension=dimension, metric=metric,
        cloud=where["cloud"], region=where["region"],
        deletion_protection=protection, tags=tags or None,
    )


def _configure(registry: Registry, engine: IndexEngine, body: dict[str, Any]) -> None:
    for key in ("schema", "deployment", "embed"):
        if body.get(key) is not None:
            raise bad_request(f"Changing {key} {_UNSUPPORTED}")
    protection = body.get("deletion_protection")
    if protection is not None:
        if protection not in ("enabled", "disabled"):
            raise bad_request(
                f"deletion_protection must be 'enabled' or 'disabled', got {describe(protection)}"
            )
        engine.config.deletion_protection = protection
    tags = body.get("tags")
    if tags is not None:
        if not isinstance(tags, dict):
            raise bad_request("tags must be an object of string values")
        if not all(isinstance(v, str) for v in tags.values()):
            raise bad_request("tags must be an object of string values")
        merged = dict(engine.config.tags or {})
        for key, value in tags.items():
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = value
        engine.config.tags = merged or None
    registry.save_config(engine)


# -- data plane ------------------------------------------------------------------------------


def _upsert(engine: IndexEngine, body_bytes: bytes) -> tuple[dict[str, Any], int]:
    body = rq.parse_json(body_bytes)  # at most 2 MB: read with limits.UPSERT_BODY_BYTES
    vectors = body.get("vectors")
    if not isinstance(vectors, list) or not vectors:
        raise bad_request("vectors must be a non-empty list")
    if len(vectors) > rq.MAX_UPSERT_VECTORS:
        raise bad_request(
            f"Request contains {len(vectors)} vectors; the maximum per upsert request is "
            f"{rq.MAX_UPSERT_VECTORS:,}"
        )
    namespace = rq.namespace(body.get("namespace"))
    last: dict[str, int] = {}
    ids: list[str] = []
    rows: list[Any] = []  # each item's raw values; None once a later item has the same id
    metas: list[dict[str, Any] | None] = []
    metas_json: list[str | None] = []
    for i, item in enumerate(vectors):
        if not isinstance(item, dict):
            raise bad_request(f"vectors[{i}] must be an object with id and values")
        vid = rq.vector_id(item.get("id"), f"vectors[{i}].id")
        rq.reject_sparse(item, "sparseValues")
        if "values" not in item:
            raise bad_request(f"vectors[{i}].values is required (this index is dense)")
        md, md_json = rq.metadata(item.get("metadata"), f"vectors[{i}].metadata")
        if vid in last:  # the same id twice in one request: the last one wins
            rows[last[vid]] = None
        last[vid] = len(ids)
        ids.append(vid)
        rows.append(item["values"])
        metas.append(md)
        metas_json.append(md_json)
    keep = [j for j, row in enumerate(rows) if row is not None]
    matrix = rq.values_matrix([rows[j] for j in keep], engine.config.dimension,
                              "vectors[{}].values")
    seq = engine.upsert(namespace, [ids[j] for j in keep], matrix, [metas[j] for j in keep],
                        [metas_json[j] for j in keep])
    return {"upsertedCount": len(vectors)}, seq


def _match_json(match: Match, include_values: bool, include_metadata: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"id": match.id, "score": match.score,
                            "values": match.values if include_values else []}
    if include_metadata and match.metadata is not None:
        item["metadata"] = match.metadata
    return item


@dataclass(frozen=True)
class _QuerySpec:
    k: int
    namespace: str
    node: Any
    vector: np.ndarray | None
    vector_id: str | None
    include_values: bool
    include_metadata: bool


def _parse_query(engine: IndexEngine, body_bytes: bytes) -> _QuerySpec:
    body = rq.parse_json(body_bytes)
    k = rq.top_k(body.get("topK", body.get("top_k")))
    namespace = rq.namespace(body.get("namespace"))
    include_values = rq.flag(body, "includeValues")
    include_metadata = rq.flag(body, "includeMetadata")
    rq.reject_sparse(body, "sparseVector")
    vector, vid = body.get("vector"), body.get("id")
    if vector is not None and vid is not None:
        raise bad_request("Cannot provide both 'ID' and 'vector' at the same time")
    if vector is None and vid is None:
        raise bad_request("No query provided: give a vector or the id of a stored record")
    node = rq.metadata_filter(body.get("filter"))
    query = None
    if vector is not None:
        query = rq.values_matrix([vector], engine.config.dimension, "vector",
                                 allow_zero=engine.config.metric != "cosine")[0]
    else:
        vid = rq.vector_id(vid, "id")
    return _QuerySpec(k, namespace, node, query, vid, include_values, include_metadata)


def _is_quick(engine: IndexEngine, spec: _QuerySpec) -> bool:
    """A query cheap enough to answer on the event loop (no thread hand-offs)."""
    ns = engine.namespaces.get(spec.namespace)
    return (spec.node is None and spec.k <= 100 and not spec.include_values
            and (ns is None or ns.pending_count <= 2_000))


def _check_query_size(engine: IndexEngine, spec: _QuerySpec) -> None:
    """Refuse, before searching, a query whose values alone could not fit in 4 MB (each value
    takes at least 4 bytes of JSON), so the server never gathers them."""
    values_per_match = engine.config.dimension * 4
    if not spec.include_values or spec.k * values_per_match <= rq.MAX_RESULT_BYTES:
        return
    found = min(spec.k, engine.count(spec.namespace, spec.node))  # records the query can match
    if found * values_per_match > rq.MAX_RESULT_BYTES:
        raise limits.response_too_large(
            f"query result ({found:,} matches of {engine.config.dimension:,} values)",
            rq.MAX_RESULT_BYTES, "lower topK or leave out values (includeValues)")


def _run_query(engine: IndexEngine, spec: _QuerySpec) -> bytes:
    _check_query_size(engine, spec)
    matches = engine.query(spec.namespace, spec.k, spec.node, spec.vector, spec.vector_id,
                           spec.include_values, spec.include_metadata)
    items = limits.CappedJson(rq.MAX_RESULT_BYTES - 1024, _JSON_OPTIONS, array=True)
    for match in matches:
        if not items.add(_match_json(match, spec.include_values, spec.include_metadata)):
            raise limits.response_too_large(
                "query result", rq.MAX_RESULT_BYTES,
                "lower topK or leave out values or metadata")
    return orjson.dumps({
        "matches": orjson.Fragment(items.encode()),
        "namespace": spec.namespace,
        "usage": {"readUnits": 1},
    })


def _record_json(values: np.ndarray, metadata: dict | None, vid: str) -> dict[str, Any]:
    item: dict[str, Any] = {"id": vid, "values": values}
    if metadata is not None:
        item["metadata"] = metadata
    return item


def _fetch(engine: IndexEngine, namespace: str, ids: list[str]) -> bytes:
    """Fetch by ids, read a few MB of vectors at a time, the answer capped in size."""
    ids = list(dict.fromkeys(ids))  # an id asked for twice is answered once
    vectors = limits.CappedJson(limits.MAX_FETCH_RESPONSE_BYTES - 1024, _JSON_OPTIONS)
    step = limits.fetch_chunk(engine.config.dimension)
    for start in range(0, len(ids), step):
        for vid, (values, metadata) in engine.fetch(namespace, ids[start:start + step]).items():
            if not vectors.add(_record_json(values, metadata, vid), vid):
                raise limits.response_too_large(
                    "fetch result", limits.MAX_FETCH_RESPONSE_BYTES, "fetch fewer ids at a time")
    return orjson.dumps({"vectors": orjson.Fragment(vectors.encode()), "namespace": namespace,
                         "usage": {"readUnits": 1}})


def _delete(engine: IndexEngine, body_bytes: bytes) -> dict[str, Any]:
    body = rq.parse_json(body_bytes)
    namespace = rq.namespace(body.get("namespace"))
    ids, delete_all, raw_filter = body.get("ids"), rq.flag(body, "deleteAll"), body.get("filter")
    chosen = sum([ids is not None, delete_all, raw_filter is not None])
    if chosen != 1:
        raise bad_request("Give exactly one of ids, deleteAll or filter")
    if delete_all:
        engine.delete_all(namespace)
    elif ids is not None:
        engine.delete_ids(namespace, rq.id_list(ids, "ids"))
    else:
        if raw_filter == {}:
            raise bad_request("Delete with empty metadata filter is not allowed")
        node = rq.metadata_filter(raw_filter)
        assert node is not None
        engine.delete_by_filter(namespace, node)
    return {}


def _update(engine: IndexEngine, body_bytes: bytes) -> dict[str, Any]:
    body = rq.parse_json(body_bytes)
    namespace = rq.namespace(body.get("namespace"))
    rq.reject_sparse(body, "sparseValues")
    vid, raw_filter = body.get("id"), body.get("filter")
    if (vid is None) == (raw_filter is None):
        raise bad_request("Give exactly one of id or filter")
    values = body.get("values")
    set_metadata, _ = rq.metadata(body.get("setMetadata"), "setMetadata")
    if vid is not None:
        vid = rq.vector_id(vid, "id")
        if values is None and set_metadata is None:
            raise bad_request("Nothing to update: give values and/or setMetadata")
        matrix = (
            rq.values_matrix([values], engine.config.dimension, "values")[0]
            if values is not None else None
        )
        matched, _ = engine.update(namespace, vid, matrix, set_metadata)
        return {"matchedRecords": matched}
    if values is not None:
        raise bad_request("Update by metadata request does not support updating vector values")
    if raw_filter == {}:
        raise bad_request("Update with empty metadata filter is not allowed")
    if set_metadata is None:
        raise bad_request("Update by metadata needs setMetadata")
    node = rq.metadata_filter(raw_filter)
    assert node is not None
    matched, _ = engine.update_by_filter(namespace, node, set_metadata, rq.flag(body, "dryRun"))
    return {"matchedRecords": matched}


def _stats(engine: IndexEngine, body_bytes: bytes) -> dict[str, Any]:
    body = rq.parse_json(body_bytes)
    counts = engine.stats(rq.metadata_filter(body.get("filter")))
    return {
        "namespaces": {name: {"vectorCount": n} for name, n in sorted(counts.items())},
        "dimension": engine.config.dimension,
        "indexFullness": 0.0,
        "totalVectorCount": sum(counts.values()),
        "metric": engine.config.metric,
        "vectorType": "dense",
    }


def _list(engine: IndexEngine, params: dict[str, Any]) -> dict[str, Any]:
    namespace = rq.namespace(params.get("namespace"))
    prefix = params.get("prefix") or ""
    if prefix and (len(prefix) > rq.MAX_ID_LENGTH or not prefix.isascii()):
        raise bad_request("prefix must be at most 512 ASCII characters")
    limit = rq.limit(params.get("limit"), rq.MAX_LIST_LIMIT, rq.MAX_LIST_LIMIT)
    after = _untoken(params.get("paginationToken"), namespace)
    ids = engine.store.list_ids(namespace, prefix, after, limit + 1)
    page: dict[str, Any] = {
        "vectors": [{"id": vid} for vid in ids[:limit]],
        "namespace": namespace,
        "usage": {"readUnits": 1},
    }
    if len(ids) > limit:
        page["pagination"] = {"next": _token({"ns": namespace, "after": ids[limit - 1]})}
    return page


def _namespace_list(engine: IndexEngine, params: dict[str, Any]) -> dict[str, Any]:
    prefix = params.get("prefix") or ""
    limit = rq.limit(params.get("limit"), 100, 100)
    names = [n for n in engine.namespace_names() if _display(n).startswith(prefix)]
    after = _untoken(params.get("paginationToken"), "")
    shown = sorted(names, key=_display)
    if after is not None:
        shown = [n for n in shown if _display(n) > after]
    page = shown[:limit]
    result: dict[str, Any] = {
        "namespaces": [{"name": _display(n), "record_count": engine.count(n, None)} for n in page],
        "total_count": len(names),
    }
    if len(shown) > limit:
        result["pagination"] = {"next": _token({"ns": "", "after": _display(page[-1])})}
    return result


def _fetch_by_metadata(engine: IndexEngine, body_bytes: bytes) -> bytes:
    body = rq.parse_json(body_bytes)
    namespace = rq.namespace(body.get("namespace"))
    if not body.get("filter"):
        raise bad_request("Empty filter provided for fetch by metadata request")
    node = rq.metadata_filter(body.get("filter"))
    assert node is not None
    limit = rq.limit(body.get("limit"), 100, 10_000)
    after = _untoken(body.get("paginationToken"), namespace)
    # A page holds at most limits.MAX_PAGE_BYTES of JSON: read no more records than could fit
    # (each value takes at least 4 bytes), and end the page early where the next would not.
    readable = min(limit, limits.fetch_chunk(engine.config.dimension))
    found, more = engine.fetch_by_metadata(namespace, node, readable, after)
    vectors = limits.CappedJson(limits.MAX_PAGE_BYTES - 2048, _JSON_OPTIONS)
    last = None
    for vid, (values, metadata) in found.items():
        if not vectors.add(_record_json(values, metadata, vid), vid):
            if last is None:  # cannot happen within the record limits, but never loop forever
                raise limits.response_too_large("record", limits.MAX_PAGE_BYTES, "")
            more = last  # the next page starts after the last record that fitted
            break
        last = vid
    result: dict[str, Any] = {
        "vectors": orjson.Fragment(vectors.encode()), "namespace": namespace,
        "usage": {"readUnits": 1},
    }
    if more is not None:
        result["pagination"] = {"next": _token({"ns": namespace, "after": more})}
    return orjson.dumps(result)


# -- the application ---------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(handler: Handler) -> Handler:
    """Turn :class:`ApiError` (and crashes) into Pinecone-shaped JSON errors."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return _json(exc.body(), exc.status)
        except ClientDisconnect:  # the client left while sending its body: nobody to answer
            return Response(status_code=400)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer like Pinecone
            event(log, "request_failed", level=logging.ERROR, path=request.url.path,
                  error=repr(exc))
            if faults.is_storage_full(exc):  # a full disk is an outage (507), not a bug
                full = faults.storage_full(exc)
                return _json(full.body(), full.status)
            return _json(ApiError(500, f"Internal error: {exc!r}").body(), 500)

    return wrapped


def create_app(registry: Registry, api_key: str | None = None,
               allowed_hosts: AllowedHosts | None = None) -> Starlette:
    """The ASGI application serving ``registry`` (``api_key=None``: any non-empty key) to
    requests whose Host header ``allowed_hosts`` allows (default: loopback names only)."""

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    def engine_for(request: Request) -> IndexEngine:
        name = request.path_params["index"]
        engine = registry.engines.get(name)
        if engine is None:
            raise ApiError(404, f"Index '{name}' not found")
        return engine

    # control plane

    async def list_indexes(request: Request) -> Response:
        return _json({"indexes": [_index_model(e, request) for e in registry.list()]})

    async def create_index(request: Request) -> Response:
        config = _parse_create(await limits.read_json(request, limits.CONTROL_BODY_BYTES))
        engine = await run(registry.create, config)
        return _json(_index_model(engine, request), 201)

    async def create_for_model(_request: Request) -> Response:
        raise bad_request(f"Integrated embedding (create_for_model) {_UNSUPPORTED}")

    async def describe_index(request: Request) -> Response:
        return _json(_index_model(registry.get(request.path_params["name"]), request))

    async def configure_index(request: Request) -> Response:
        engine = registry.get(request.path_params["name"])
        body = await limits.read_json(request, limits.CONTROL_BODY_BYTES)
        await run(_configure, registry, engine, body)
        return _json(_index_model(engine, request))

    async def delete_index(request: Request) -> Response:
        await run(registry.delete, request.path_params["name"])
        return Response(status_code=202)

    # data plane

    async def upsert(request: Request) -> Response:
        engine = engine_for(request)
        body = await limits.read_body(request, limits.UPSERT_BODY_BYTES)
        payload, seq = await run(_upsert, engine, body)
        return _json(payload, headers={"x-pinecone-request-lsn": str(seq)})

    async def query(request: Request) -> Response:
        engine = engine_for(request)
        body = await limits.read_body(request, limits.DATA_BODY_BYTES)
        spec = (_parse_query(engine, body) if len(body) <= limits.INLINE_PARSE_BYTES
                else await run(_parse_query, engine, body))
        # Most queries take well under a millisecond of CPU: answering them on the event loop
        # saves two thread hand-offs, which dominate latency on a busy machine.
        encoded = _run_query(engine, spec) if _is_quick(engine, spec) else await run(
            _run_query, engine, spec)
        return Response(encoded, media_type="application/json", headers={
            "x-pinecone-max-indexed-lsn": str(engine.searchable_seq(spec.namespace)),
            "x-pinecone-request-lsn": str(engine.store.last_seq),
        })

    async def fetch(request: Request) -> Response:
        engine = engine_for(request)
        namespace = rq.namespace(request.query_params.get("namespace"))
        ids = rq.id_list(request.query_params.getlist("ids"), "ids")
        return _respond(await run(_fetch, engine, namespace, ids))

    def body_handler(work: Callable[[IndexEngine, bytes], Any],
                     limit: int = limits.DATA_BODY_BYTES) -> Handler:
        """A data-plane POST: the body (at most ``limit`` bytes) goes to ``work`` in a thread."""

        async def handler(request: Request) -> Response:
            engine = engine_for(request)
            return _respond(await run(work, engine, await limits.read_body(request, limit)))

        return handler

    def params_handler(work: Callable[[IndexEngine, dict[str, Any]], Any]) -> Handler:
        async def handler(request: Request) -> Response:
            return _respond(await run(work, engine_for(request), dict(request.query_params)))

        return handler

    async def create_namespace(request: Request) -> Response:
        engine = engine_for(request)
        body = await limits.read_json(request, limits.CONTROL_BODY_BYTES)
        name = rq.namespace(body.get("name"))
        if name == "" or name in engine.namespace_names():
            raise ApiError(409, f"Namespace {_display(name)!r} already exists")
        await run(engine.create_namespace, name)
        return _json({"name": name, "record_count": 0}, 201)

    async def describe_namespace(request: Request) -> Response:
        engine = engine_for(request)
        namespace = rq.namespace(request.path_params["name"])
        engine.require_namespace(namespace)
        return _json({"name": _display(namespace), "record_count": engine.count(namespace, None)})

    async def delete_namespace(request: Request) -> Response:
        engine = engine_for(request)
        namespace = rq.namespace(request.path_params["name"])
        engine.require_namespace(namespace)
        await run(engine.delete_all, namespace, True)
        return Response(status_code=202)

    async def records(request: Request) -> Response:
        engine_for(request)
        raise bad_request(f"The records API (integrated embedding) {_UNSUPPORTED}")

    # local extensions

    async def health(_request: Request) -> Response:
        return _json({"status": "ok", "pid": os.getpid()})

    async def status(_request: Request) -> Response:
        return _json({
            "pid": os.getpid(),
            "time": time.time(),
            "indexes": {
                e.config.name: {
                    "vectors": e.total(),
                    "pending": e.pending(),
                    "namespaces": {n: ns.live_count for n, ns in list(e.namespaces.items())},
                }
                for e in registry.list()
            },
        })

    async def snapshot(_request: Request) -> Response:
        await run(registry.snapshot_all)
        return _json({"status": "ok"})

    data = "/data/{index}"
    routes = [
        Route("/indexes", list_indexes, methods=["GET"]),
        Route("/indexes", create_index, methods=["POST"]),
        Route("/indexes/create-for-model", create_for_model, methods=["POST"]),
        Route("/indexes/{name}", describe_index, methods=["GET"]),
        Route("/indexes/{name}", configure_index, methods=["PATCH"]),
        Route("/indexes/{name}", delete_index, methods=["DELETE"]),
        Route(f"{data}/vectors/upsert", upsert, methods=["POST"]),
        Route(f"{data}/query", query, methods=["POST"]),
        Route(f"{data}/vectors/fetch", fetch, methods=["GET"]),
        Route(f"{data}/vectors/fetch_by_metadata", body_handler(_fetch_by_metadata),
              methods=["POST"]),
        Route(f"{data}/vectors/delete", body_handler(_delete), methods=["POST"]),
        Route(f"{data}/vectors/update", body_handler(_update), methods=["POST"]),
        Route(f"{data}/describe_index_stats", body_handler(_stats), methods=["POST"]),
        Route(f"{data}/vectors/list", params_handler(_list), methods=["GET"]),
        Route(f"{data}/namespaces", params_handler(_namespace_list), methods=["GET"]),
        Route(f"{data}/namespaces", create_namespace, methods=["POST"]),
        Route(data + "/namespaces/{name:path}", describe_namespace, methods=["GET"]),
        Route(data + "/namespaces/{name:path}", delete_namespace, methods=["DELETE"]),
        Route(data + "/records/{rest:path}", records, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/_refarch/health", health, methods=["GET"]),
        Route("/_refarch/status", status, methods=["GET"]),
        Route("/_refarch/snapshot", snapshot, methods=["POST"]),
    ]
    routes = [Route(r.path, _endpoint(r.endpoint), methods=list(r.methods or ())) for r in routes]

    async def unknown_route(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        message = f"{request.method} {request.url.path} {_UNSUPPORTED}"
        return _json(ApiError(code, message).body(), code)

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(HostCheckMiddleware, allowed=allowed_hosts or AllowedHosts("127.0.0.1")),
            Middleware(_ApiKeyMiddleware, api_key=api_key),
            Middleware(faults.FaultMiddleware, faults=faults.middleware_faults()),
        ],
        exception_handlers={HTTPException: unknown_route},
    )
