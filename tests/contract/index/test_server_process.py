"""Running the local server as a process: readiness, clear start-up errors, API key, restarts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from pinecone import Pinecone, ServerlessSpec
from pinecone.errors.exceptions import UnauthorizedError

from refarch.bootstrap import make_index, pinecone_client
from refarch.errors import IndexServiceError
from refarch.index.client import ensure_index
from refarch.index.process import (
    find_free_port,
    local_index_session,
    server_answers,
    start_index_server,
)
from refarch.settings import Settings


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"REFARCH_HOME": str(tmp_path),
                              "REFARCH_INDEX_PORT": str(find_free_port()), **env})


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.index_port))
        squatter.listen()
        with pytest.raises(IndexServiceError) as caught:
            start_index_server(settings)
    assert f"port {settings.index_port} on 127.0.0.1 is already in use" in str(caught.value)


def test_a_data_directory_serves_one_server_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with start_index_server(settings) as first:
        with pytest.raises(IndexServiceError) as caught:
            start_index_server(settings, port=find_free_port())
        assert f"in use by another index server (pid {first.pid})" in str(caught.value)
        assert first.running()


def test_configured_api_key_is_required(tmp_path: Path) -> None:
    settings = _settings(tmp_path, REFARCH_INDEX_API_KEY="s3cret-key")
    with start_index_server(settings) as server:
        with pytest.raises(UnauthorizedError):
            Pinecone(api_key="wrong", host=server.url).list_indexes()
        client = pinecone_client(settings)  # sends the configured key
        index = ensure_index(client, "keyed", dimension=4, metric="cosine", region=settings.aws_region)
        index.upsert(vectors=[("a", [1.0, 0.0, 0.0, 0.0])])
        assert index.describe_index_stats().total_vector_count == 1
        with pytest.raises(IndexServiceError) as caught:
            ensure_index(client, "keyed", dimension=8, metric="cosine", region=settings.aws_region)
        assert "exists with dimension 4" in str(caught.value)


def test_graceful_stop_snapshots_so_restart_replays_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    vectors = np.random.default_rng(0).standard_normal((3_000, 32)).astype(np.float32)
    with start_index_server(settings) as server:
        pc = Pinecone(api_key="k", host=server.url)
        pc.create_index(name="restart", dimension=32, metric="euclidean",
                        spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        index = pc.Index("restart")
        for start in range(0, 3_000, 250):
            index.upsert(vectors=[(f"v{i}", vectors[i].tolist(), {"i": i})
                                  for i in range(start, start + 250)], namespace="ns")
        before = index.query(vector=vectors[5].tolist(), top_k=5, namespace="ns")
    assert server.process.returncode == 0
    assert list((server.data_dir / "indexes" / "restart" / "snapshots").glob("*/snap-*"))
    with start_index_server(settings) as server:
        assert "replayed=0" in server.log_tail(5)
        index = Pinecone(api_key="k", host=server.url).Index("restart")
        after = index.query(vector=vectors[5].tolist(), top_k=5, namespace="ns")
        assert [m.id for m in after.matches] == [m.id for m in before.matches]
        assert after.matches[0].id == "v5" and after.matches[0].score == pytest.approx(0.0)
        assert index.describe_index_stats().namespaces["ns"].vector_count == 3_000


def test_local_index_session_starts_a_server_only_when_none_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with local_index_session(settings) as url:
        assert server_answers(url)
        with local_index_session(settings) as again:  # reuses the running server
            assert again == url
    assert not server_answers(url)


def test_unreachable_local_server_is_a_clear_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(IndexServiceError) as caught:
        make_index(settings)
    assert "start one with `refarch index-server`" in str(caught.value)


def test_a_reachable_address_without_a_key_is_refused_before_anything_starts(
        tmp_path: Path) -> None:
    settings = _settings(tmp_path, REFARCH_INDEX_HOST="0.0.0.0")
    with pytest.raises(IndexServiceError) as caught:
        start_index_server(settings)
    assert "refusing to listen on 0.0.0.0 without an API key" in str(caught.value)
    assert "REFARCH_INDEX_API_KEY" in str(caught.value)
    assert not (tmp_path / "index").exists()
    # The server itself refuses too (the CLI and `refarch up` start it directly).
    env = {**os.environ, "REFARCH_HOME": str(tmp_path)}
    env.pop("REFARCH_INDEX_API_KEY", None)
    for command in (["-m", "refarch.index.server", "--data-dir", str(tmp_path / "d")],
                    ["-m", "refarch.cli", "index-server"]):
        done = subprocess.run(
            [sys.executable, *command, "--host", "0.0.0.0", "--port", str(settings.index_port)],
            env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2, done.stderr
        assert "refusing to listen on 0.0.0.0 without an API key" in done.stderr
        assert "REFARCH_INDEX_API_KEY" in done.stderr
        assert "listening on" not in done.stderr


def test_the_host_header_must_name_the_server(tmp_path: Path) -> None:
    settings = _settings(tmp_path, REFARCH_INDEX_ALLOWED_HOSTS="index.internal,.corp.example")
    with start_index_server(settings) as server:
        def get(host: str) -> httpx.Response:
            return httpx.get(f"{server.url}/indexes", headers={"Api-Key": "k", "Host": host})

        for allowed in (f"127.0.0.1:{server.port}", f"localhost:{server.port}",
                        "index.internal:5081", "search.corp.example"):
            assert get(allowed).status_code == 200, allowed
        for refused in ("rebound.attacker.example", "index.internal.attacker.example",
                        f"10.1.2.3:{server.port}"):
            response = get(refused)
            assert response.status_code == 400, refused
            assert "REFARCH_INDEX_ALLOWED_HOSTS" in response.json()["error"]["message"]
        # The SDK through an allowed name: describe_index hands back that name as the host.
        pc = Pinecone(api_key="k", host=server.url,
                      additional_headers={"Host": "index.internal"})
        pc.create_index(name="named", dimension=4, metric="cosine",
                        spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        assert pc.describe_index("named").host == "http://index.internal/data/named"
