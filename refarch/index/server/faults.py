"""Write faults on demand, for fault tests only: writes fail while reads keep answering.

**Unsafe, off unless armed.** The hook exists only in a server started with
``REFARCH_INDEX_UNSAFE_TEST_WRITE_FAULTS=1`` in its environment; the server then logs a warning
at start. Any other non-empty value stops the server from starting (a typo must not leave a
production server armed, nor a test believing it injected faults). Unarmed, ``/_refarch/faults``
answers 403 saying how it is armed, and no request is ever failed.

Armed, ``POST /_refarch/faults`` (with the API key) with a JSON body
``{"status": 503, "seconds": 30}`` or ``{"enospc": true, "count": 5}`` makes the next writes
(``/vectors/upsert``, ``/vectors/delete``, ``/vectors/update`` of any index) fail with that
status, for ``seconds`` (from now) and/or ``count`` requests, whichever ends first (neither:
until cleared); ``enospc`` answers what a full disk makes the server answer (507, see
:func:`storage_full`). ``DELETE /_refarch/faults`` clears the fault; ``GET`` shows it with the
number of requests failed so far. Reads (fetch, query, list, stats) are never touched, which is
exactly the outage a read-only health check cannot see.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from refarch.errors import ConfigError
from refarch.index.server.api_errors import ApiError
from refarch.logs import event

log = logging.getLogger("refarch.index.server")

#: The environment variable that arms the hook (the only value that does is ``1``).
ARM_VARIABLE = "REFARCH_INDEX_UNSAFE_TEST_WRITE_FAULTS"
#: The control endpoint.
PATH = "/_refarch/faults"
#: The requests a write fault fails: every data-plane write.
_WRITE = re.compile(r"^/data/[^/]+/vectors/(upsert|delete|update)$")
#: Statuses a fault may answer with: outages, never a rejection of the content.
ALLOWED_STATUSES = frozenset({429, 500, 502, 503, 504, 507})
_CODES = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
          504: "DEADLINE_EXCEEDED", 507: "INSUFFICIENT_STORAGE"}


def armed(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (the process environment) arms the hook; raises
    :class:`~refarch.errors.ConfigError` for any value but unset, empty or ``1``."""
    value = (os.environ if env is None else env).get(ARM_VARIABLE, "")
    if value == "":
        return False
    if value != "1":
        raise ConfigError(
            f"{ARM_VARIABLE}={value!r}: this unsafe test hook is armed only by the value 1; "
            f"unset it on any server that is not a throwaway test server"
        )
    return True


def storage_full(exc: BaseException) -> ApiError:
    """What the server answers when a write finds the disk full (ENOSPC, or SQLite's
    SQLITE_FULL): 507, an outage (the client should retry later), never a rejection of the
    request's content."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ApiError(507, f"Insufficient storage: the index data directory is full ({reason})",
                    "INSUFFICIENT_STORAGE")


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a full disk: ENOSPC or EDQUOT from a file write (snapshots), or
    SQLITE_FULL from the record store (SQLite reports a full disk as its own error)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


@dataclass
class WriteFault:
    """The fault in force: answer ``status`` until ``until`` (monotonic) / for ``remaining`` requests."""

    status: int
    enospc: bool
    until: float | None
    remaining: int | None

    def error(self) -> ApiError:
        if self.enospc:
            return storage_full(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return ApiError(self.status, f"Injected write fault ({ARM_VARIABLE}): HTTP {self.status}",
                        _CODES.get(self.status))


class WriteFaults:
    """The fault state of one server process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: WriteFault | None = None
        self.failed = 0

    def set(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Arm a fault from a control request's JSON body; raises :class:`ApiError` (400)."""
        enospc = body.get("enospc", False) is True
        status = 507 if enospc else body.get("status", 503)
        seconds, count = body.get("seconds"), body.get("count")
        if isinstance(status, bool) or status not in ALLOWED_STATUSES:
            raise ApiError(400, f"status must be one of {sorted(ALLOWED_STATUSES)} (an outage), "
                                f"got {status!r}")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                                    or seconds <= 0):
            raise ApiError(400, f"seconds must be a positive number, got {seconds!r}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count <= 0):
            raise ApiError(400, f"count must be a positive integer, got {count!r}")
        fault = WriteFault(int(status), enospc,
                           time.monotonic() + float(seconds) if seconds is not None else None, count)
        with self._lock:
            self._fault = fault
        event(log, "index_write_fault_set", level=logging.WARNING, status=fault.status,
              enospc=enospc, seconds=seconds if seconds is not None else "", count=count or "")
        return self.describe()

    def clear(self) -> dict[str, Any]:
        """End the fault in force (if any)."""
        with self._lock:
            self._fault = None
        event(log, "index_write_fault_cleared", level=logging.WARNING, failed=self.failed)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        """The fault in force (or ``None``) and how many requests were failed so far."""
        with self._lock:
            fault = self._active()
            shown = None if fault is None else {
                "status": fault.status, "enospc": fault.enospc, "remaining": fault.remaining,
                "seconds_left": None if fault.until is None else max(0.0, fault.until - time.monotonic()),
            }
            return {"armed": True, "fault": shown, "failed": self.failed}

    def _active(self) -> WriteFault | None:
        fault = self._fault
        if fault is not None and (
            (fault.until is not None and time.monotonic() >= fault.until)
            or (fault.remaining is not None and fault.remaining <= 0)
        ):
            self._fault = fault = None
        return fault

    def take(self) -> ApiError | None:
        """The error for one write request now, or ``None`` (counts it against ``count``)."""
        with self._lock:
            fault = self._active()
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
            self.failed += 1
            return fault.error()


async def _answer(send: Send, error: ApiError | None = None, payload: Any = None) -> None:
    status = error.status if error is not None else 200
    body = orjson.dumps(error.body() if error is not None else payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class FaultMiddleware:
    """ASGI middleware: the control endpoint, and failing writes while a fault is in force.

    ``faults`` is ``None`` when the hook is not armed: then the control endpoint refuses (403)
    and every other request passes straight through.
    """

    def __init__(self, app: ASGIApp, faults: WriteFaults | None) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == PATH:
            await self._control(scope, receive, send)
            return
        if self.faults is not None and scope["method"] == "POST" and _WRITE.match(path):
            error = self.faults.take()
            if error is not None:
                await _read_body(receive)
                await _answer(send, error)
                return
        await self.app(scope, receive, send)

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.faults is None:
            await _answer(send, ApiError(
                403, f"Write-fault injection is off: it is an unsafe test hook, armed only by "
                     f"{ARM_VARIABLE}=1 in the index server's environment", "FORBIDDEN"))
            return
        method = scope["method"]
        try:
            if method == "GET":
                payload = self.faults.describe()
            elif method == "DELETE":
                payload = self.faults.clear()
            elif method == "POST":
                raw = await _read_body(receive)
                try:
                    body = orjson.loads(raw or b"{}")
                except orjson.JSONDecodeError as exc:
                    raise ApiError(400, f"the body is not JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "the body must be a JSON object")
                payload = self.faults.set(body)
            else:
                raise ApiError(405, f"{method} {PATH}: use GET, POST or DELETE")
        except ApiError as exc:
            await _answer(send, exc)
            return
        await _answer(send, payload=payload)


def middleware_faults(env: Mapping[str, str] | None = None) -> WriteFaults | None:
    """The fault state for a new app: a :class:`WriteFaults` when armed (logged loudly), else
    ``None``; raises :class:`~refarch.errors.ConfigError` on a value that is not ``1``."""
    if not armed(env):
        return None
    event(log, "index_write_faults_armed", level=logging.WARNING, variable=ARM_VARIABLE,
          note="unsafe test hook: writes can be made to fail on request")
    return WriteFaults()
