"""What one request may cost the local index server: body sizes, response sizes, parsing.

* **Request bodies** are counted while they stream in and refused with 413
  ``PAYLOAD_TOO_LARGE`` once over their route's limit (:func:`read_body`); nothing past the limit
  is kept in memory. The rest of an oversized body is read and dropped (up to
  :data:`MAX_DRAIN_BYTES`) so that the client, which sends its whole body before it reads the
  answer, gets the 413 instead of a reset connection.
* **JSON** bodies larger than :data:`INLINE_PARSE_BYTES` are parsed in the thread pool
  (:func:`read_json`), so one large request never stalls the event loop.
* **Responses**: a query answers at most 4 MB (Pinecone's limit; checked in the app), a fetch
  at most :data:`MAX_FETCH_RESPONSE_BYTES`, and a ``fetch_by_metadata`` page at most
  :data:`MAX_PAGE_BYTES` (a page that would be larger is cut short and continues through its
  pagination token). :class:`CappedJson` builds such JSON member by member, so the cap also
  bounds the memory a response takes.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from refarch.index.server import requests as rq
from refarch.index.server.api_errors import ApiError, bad_request

KB = 1024
MB = 1024 * 1024

#: Upsert: Pinecone's limit (2 MB per request, with at most 1,000 records).
UPSERT_BODY_BYTES = rq.MAX_REQUEST_BYTES
#: Query, update, delete, fetch_by_metadata, stats: room for a 20,000-dimensional vector and a
#: filter of 1,000 conditions with long ``$in`` lists.
DATA_BODY_BYTES = 4 * MB
#: Control plane (create and configure an index, create a namespace): small JSON objects.
CONTROL_BODY_BYTES = 64 * KB
#: How much of an oversized body is read and dropped before the 413 (beyond: the connection
#: is closed after the answer).
MAX_DRAIN_BYTES = 32 * MB
#: Bodies up to this size are parsed on the event loop (faster than a thread hand-off).
INLINE_PARSE_BYTES = 64 * KB
#: A fetch by ids answers at most this much JSON (1,000 records of 3,072 dimensions fit).
MAX_FETCH_RESPONSE_BYTES = 64 * MB
#: A fetch_by_metadata page holds at most this much JSON (the rest comes on the next page).
MAX_PAGE_BYTES = 4 * MB
#: float32 values held in memory per chunk while a fetch is serialised.
_FETCH_CHUNK_BYTES = 4 * MB


def human_size(size: int) -> str:
    """``2MB``, ``64KB``, ``2.4MB``: sizes in Pinecone's error style."""
    if size >= MB:
        return f"{size / MB:.1f}".removesuffix(".0") + "MB"
    return f"{size / KB:.1f}".removesuffix(".0") + "KB"


def too_large(size: int, limit: int, *, at_least: bool = False) -> ApiError:
    """The 413 for a body of ``size`` bytes (``at_least``: reading stopped there)."""
    shown = f"over {human_size(size)}" if at_least else human_size(size)
    return ApiError(
        413, f"Request size {shown} exceeds the maximum supported size of {human_size(limit)}"
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it streams past ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DRAIN_BYTES:
        raise too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > MAX_DRAIN_BYTES:
            raise too_large(size, limit, at_least=True)
    if size > limit:
        raise too_large(size, limit)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object (see :func:`read_body`), parsed in the thread pool
    when it is large."""
    body = await read_body(request, limit)
    if len(body) > INLINE_PARSE_BYTES:
        parsed: dict[str, Any] = await run_in_threadpool(rq.parse_json, body)
        return parsed
    return rq.parse_json(body)


def fetch_chunk(dimension: int) -> int:
    """How many records to read at once so their values take about 4 MB."""
    return max(1, _FETCH_CHUNK_BYTES // (4 * dimension))


class CappedJson:
    """A JSON object (or, with ``array=True``, an array) serialised member by member, refusing
    to grow past ``limit`` bytes, so a large response never exists in full before it is refused.

    :meth:`add` returns False (and adds nothing) when the member would take it over the limit;
    :meth:`encode` gives the bytes.
    """

    def __init__(self, limit: int, options: int = 0, *, array: bool = False) -> None:
        self.limit = limit
        self.options = options
        self.brackets = (b"[", b"]") if array else (b"{", b"}")
        self.parts: list[bytes] = []
        self.size = 2

    def __len__(self) -> int:
        return len(self.parts)

    def add(self, value: Any, key: str | None = None) -> bool:
        """Add ``value`` (as ``"key": value`` in an object) if it fits."""
        member = orjson.dumps(value, option=self.options)
        if key is not None:
            member = orjson.dumps(key) + b":" + member
        extra = len(member) + (1 if self.parts else 0)
        if self.size + extra > self.limit:
            return False
        self.parts.append(member)
        self.size += extra
        return True

    def encode(self) -> bytes:
        """The object or array as JSON."""
        return self.brackets[0] + b",".join(self.parts) + self.brackets[1]


def response_too_large(what: str, limit: int, advice: str) -> ApiError:
    """The 400 for a response that would exceed ``limit`` bytes."""
    return bad_request(f"The {what} would be over the {human_size(limit)} limit: {advice}")
