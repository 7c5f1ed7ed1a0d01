"""Settings of the vector index and the one function that picks the backend."""

from __future__ import annotations

import threading
import time

import pytest

from refarch.bootstrap import pinecone_client
from refarch.errors import ConfigError
from refarch.index.client import LOCAL_PLACEHOLDER_KEY, local_url
from refarch.index.server.rwlock import RWLock
from refarch.settings import Settings


def test_index_settings_from_the_environment() -> None:
    default = Settings.from_env({})
    assert (default.index_host, default.index_port, default.index_api_key) == (
        "127.0.0.1", 5081, None)
    custom = Settings.from_env({"REFARCH_INDEX_HOST": "10.0.0.5", "REFARCH_INDEX_PORT": "6000",
                                "REFARCH_INDEX_API_KEY": "s3cret"})
    assert local_url(custom) == "http://10.0.0.5:6000"
    assert custom.index_api_key == "s3cret"


def test_local_backend_points_the_sdk_at_the_local_server() -> None:
    client = pinecone_client(Settings.from_env({"REFARCH_INDEX_PORT": "6001"}))
    assert client.config.host == "http://127.0.0.1:6001"
    assert client.config.api_key == LOCAL_PLACEHOLDER_KEY
    keyed = pinecone_client(Settings.from_env({"REFARCH_INDEX_API_KEY": "k1"}))
    assert keyed.config.api_key == "k1"


def test_pinecone_backend_needs_a_key() -> None:
    with pytest.raises(ConfigError) as caught:
        pinecone_client(Settings.from_env({"REFARCH_INDEX": "pinecone"}))
    assert "PINECONE_API_KEY" in str(caught.value)
    client = pinecone_client(Settings.from_env({"REFARCH_INDEX": "pinecone",
                                                "PINECONE_API_KEY": "pcsk_x"}))
    assert client.config.host == "https://api.pinecone.io"


def test_rwlock_readers_share_writers_exclude() -> None:
    lock = RWLock()
    active: list[str] = []
    seen: list[tuple[str, ...]] = []
    guard = threading.Lock()

    def work(kind: str) -> None:
        ctx = lock.read() if kind == "r" else lock.write()
        with ctx:
            with guard:
                active.append(kind)
                seen.append(tuple(active))
            time.sleep(0.02)
            with guard:
                active.remove(kind)

    threads = [threading.Thread(target=work, args=(k,)) for k in "rrwrrwrr"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert any(s.count("r") >= 2 for s in seen), "readers never overlapped"
    assert all("w" not in s or s == ("w",) for s in seen), "a writer was not alone"
