"""Who may reach the local index server: no key, no bind beyond loopback; the Host header must
name the server (DNS rebinding), with REFARCH_INDEX_ALLOWED_HOSTS for proxies and containers."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from refarch.errors import IndexServiceError
from refarch.index.server.hosts import (
    AllowedHosts,
    HostCheckMiddleware,
    check_bind,
    host_name,
    is_loopback,
)
from refarch.settings import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost",
                                  "LOCALHOST."])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.20", "8.8.8.8",
                                  "no-such-host.invalid"])
def test_addresses_other_machines_may_reach(host: str) -> None:
    assert not is_loopback(host)


def test_a_reachable_bind_needs_an_api_key_and_says_how_to_set_one() -> None:
    for host in ("0.0.0.0", "10.0.0.5", "::"):
        with pytest.raises(IndexServiceError) as caught:
            check_bind(host, None)
        message = str(caught.value)
        assert f"refusing to listen on {host} without an API key" in message
        assert "REFARCH_INDEX_API_KEY" in message and "secrets.token_urlsafe" in message
        check_bind(host, "a-long-random-key")  # with a key it may
    check_bind("127.0.0.1", None)
    check_bind("localhost", None)


@pytest.mark.parametrize(("header", "name"), [
    ("localhost:5081", "localhost"), ("127.0.0.1", "127.0.0.1"), ("[::1]:5081", "::1"),
    ("Index.Internal:80", "index.internal"), ("example.com.", "example.com"), ("", ""),
])
def test_host_names_from_headers(header: str, name: str) -> None:
    assert host_name(header) == name


def test_allowed_hosts() -> None:
    loopback = AllowedHosts("127.0.0.1")
    for header in ("127.0.0.1:5081", "localhost:5081", "[::1]:5081", "127.0.0.2"):
        assert loopback.allows(header), header
    for header in ("evil.example:5081", "localhost.evil.example", "10.0.0.5:5081", "",
                   "index:5081"):
        assert not loopback.allows(header), header
    proxied = AllowedHosts("10.0.0.5", ["index", ".corp.example"])
    for header in ("10.0.0.5:5081", "index:5081", "search.corp.example", "corp.example"):
        assert proxied.allows(header), header
    assert not proxied.allows("corp.example.evil.io")
    assert not proxied.allows("xcorp.example")
    assert AllowedHosts("127.0.0.1", ["*"]).allows("anything.at.all")
    assert AllowedHosts("127.0.0.1", ["Index:5081"]).allows("index:80")  # names, not ports


def test_the_allowed_hosts_setting() -> None:
    settings = Settings.from_env({"REFARCH_INDEX_ALLOWED_HOSTS": " Index , .Corp.Example,, "})
    assert settings.index_allowed_hosts == ("index", ".corp.example")
    assert Settings.from_env({}).index_allowed_hosts == ()


def test_a_request_for_another_host_gets_pinecones_400_saying_what_to_set() -> None:
    async def hello(_request: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = HostCheckMiddleware(Starlette(routes=[Route("/", hello)]),
                              AllowedHosts("127.0.0.1", ["index"]))
    client = TestClient(app, base_url="http://index:5081")
    assert client.get("/").text == "hello"
    refused = client.get("/", headers={"Host": "attacker.example:5081"})
    assert refused.status_code == 400
    body = refused.json()
    assert body["status"] == 400 and body["error"]["code"] == "INVALID_ARGUMENT"
    assert "Host 'attacker.example:5081' is not allowed" in body["error"]["message"]
    assert "REFARCH_INDEX_ALLOWED_HOSTS" in body["error"]["message"]
    assert "answers to 127.0.0.1, index, ip6-localhost, localhost" in body["error"]["message"]
