"""Who may reach the local index server: the bind address needs a key, the Host header a name.

* :func:`check_bind` refuses to listen on an address other hosts can reach (anything but
  loopback) without an API key: the server would otherwise accept any key from anyone on the
  network.
* :class:`AllowedHosts` is the set of names a request's ``Host`` header may carry: the loopback
  names, the bind address, and ``REFARCH_INDEX_ALLOWED_HOSTS`` (names clients use through a
  proxy or a container network). Checking it defeats DNS rebinding: a web page whose name
  resolves to 127.0.0.1 makes the browser send its own name as the Host, which is refused.
  :class:`HostCheckMiddleware` answers any other Host with a 400 in Pinecone's error shape.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from refarch.errors import IndexServiceError
from refarch.index.filters import describe
from refarch.index.server.api_errors import ApiError

#: Names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: Bind addresses that listen on every interface.
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
KEY_HINT = (
    "set REFARCH_INDEX_API_KEY to a long random secret (for example the output of "
    "`python -c \"import secrets; print(secrets.token_urlsafe(32))\"`) for the server and its "
    "clients, or bind 127.0.0.1 (REFARCH_INDEX_HOST)"
)


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is reachable from this machine only."""
    name = host.strip().lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    address = _address(name)
    if address is not None:
        return address.is_loopback
    if name in WILDCARD_ADDRESSES:
        return False
    try:
        found = socket.getaddrinfo(name, None)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(
        (ip := _address(str(info[4][0]))) is not None and ip.is_loopback for info in found
    )


def check_bind(host: str, api_key: str | None) -> None:
    """Raise :class:`IndexServiceError` when ``host`` is reachable by other machines and no
    API key is configured."""
    if api_key or is_loopback(host):
        return
    raise IndexServiceError(
        f"refusing to listen on {host} without an API key: other machines could reach the "
        f"index server there, and without a key it accepts any; {KEY_HINT}"
    )


def host_name(header: str) -> str:
    """The name part of a ``Host`` header: no port, no IPv6 brackets, lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


class AllowedHosts:
    """The names a request's Host header may carry.

    ``*`` allows any name (behind a proxy that checks it); a name starting with a dot allows
    that domain and its subdomains (``.example.com``).
    """

    def __init__(self, bind_host: str, extra: Iterable[str] = ()) -> None:
        names = {*LOOPBACK_NAMES, host_name(bind_host), *(host_name(n) for n in extra)}
        if bind_host.strip() in WILDCARD_ADDRESSES:
            names.add(socket.gethostname().lower())
        names.discard("")
        self.any = "*" in names
        self.suffixes = tuple(n for n in names if n.startswith("."))
        self.names = frozenset(n for n in names if not n.startswith(".") and n != "*")

    def allows(self, header: str) -> bool:
        """Whether a request with this ``Host`` header may be answered."""
        if self.any:
            return True
        name = host_name(header)
        if not name:
            return False
        if name in self.names:
            return True
        address = _address(name)
        if address is not None and address.is_loopback:
            return True
        return any(name.endswith(s) or name == s[1:] for s in self.suffixes)

    def describe(self) -> str:
        """The allowed names, for an error message."""
        shown = sorted(self.names) + sorted(f"*{s}" for s in self.suffixes)
        return ", ".join(shown)


class HostCheckMiddleware:
    """Answer requests whose Host header is not allowed with a 400 (Pinecone's error shape)."""

    def __init__(self, app: ASGIApp, allowed: AllowedHosts) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"host"), b"")
        header = raw.decode("latin-1")
        if self.allowed.allows(header):
            await self.app(scope, receive, send)
            return
        error = ApiError(400, (
            f"Host {describe(header)} is not allowed: this index server answers to "
            f"{self.allowed.describe()}. If clients reach it by another name (a proxy, a "
            f"container network), add that name to REFARCH_INDEX_ALLOWED_HOSTS on the server"
        ))
        await _send_json(send, error.status, error.body())


async def _send_json(send: Send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "http.response.body", "body": body})
