"""Checking a deployment: the health wait over real HTTP, the one-off task against a stubbed
ECS API (the AWS boundary), and the smoke search against the local index server."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from refarch.deploy.smoke import cloud_settings, run_task, smoke_search, wait_for_app
from refarch.errors import DeployError
from refarch.settings import Settings

OUTPUTS = {
    "cluster_name": "refarch-dev-cluster",
    "task_definition_arns": {"app": "arn:aws:ecs:us-east-1:123456789012:task-definition/app:3"},
    "private_subnet_ids": ["subnet-a", "subnet-b"],
    "service_security_group_ids": {"app": "sg-app"},
    "index_name": "products",
}
TASK = "arn:aws:ecs:us-east-1:123456789012:task/refarch-dev-cluster/abc"


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server whose health path fails twice, then answers 200."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            healthy = self.path == "/_stcore/health" and len(hits) > 2
            self.send_response(200 if healthy else 503)
            self.end_headers()
            self.wfile.write(b"ok" if healthy else b"starting")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", hits
    finally:
        server.shutdown()
        server.server_close()


def test_wait_for_app_polls_the_health_path(health_server: tuple[str, list[str]]) -> None:
    url, hits = health_server
    waited = wait_for_app(url, timeout=30, interval=0.01)
    assert hits == ["/_stcore/health"] * 3
    assert waited < 30


def test_wait_for_app_gives_up_with_the_last_answer(health_server: tuple[str, list[str]]) -> None:
    url, _ = health_server
    with pytest.raises(DeployError, match="HTTP 503"):
        wait_for_app(url, timeout=0, interval=0)


def _ecs(exit_code: int) -> tuple[Any, Stubber]:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y",
                            region_name="us-east-1")
    client = session.client("ecs")
    stub = Stubber(client)
    stub.add_response("run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, {
        "cluster": "refarch-dev-cluster",
        "taskDefinition": OUTPUTS["task_definition_arns"]["app"],
        "launchType": "FARGATE",
        "count": 1,
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-app"],
            "assignPublicIp": "DISABLED"}},
        "overrides": {"containerOverrides": [
            {"name": "app", "command": ["refarch", "load", "--generate", "100"]}]},
        "startedBy": "refarch-deploy",
    })
    stopped = {"tasks": [{"taskArn": TASK, "lastStatus": "STOPPED",
                          "containers": [{"name": "migrate", "exitCode": 0},
                                         {"name": "app", "exitCode": exit_code,
                                          "reason": "boom" if exit_code else None}]}]}
    if exit_code:
        stopped["tasks"][0]["containers"][1]["reason"] = "boom"
    else:
        del stopped["tasks"][0]["containers"][1]["reason"]
    expected = {"cluster": "refarch-dev-cluster", "tasks": [TASK]}
    stub.add_response("describe_tasks", stopped, expected)  # the waiter
    stub.add_response("describe_tasks", stopped, expected)  # the exit code
    stub.activate()

    class OneClient:
        def client(self, name: str) -> Any:
            assert name == "ecs"
            return client

    return OneClient(), stub


def test_run_task_runs_inside_the_vpc_and_checks_the_exit_code() -> None:
    session, stub = _ecs(0)
    assert run_task(OUTPUTS, ["refarch", "load", "--generate", "100"], session=session) == TASK
    stub.assert_no_pending_responses()


def test_run_task_failure_names_the_exit_code() -> None:
    session, _ = _ecs(3)
    with pytest.raises(DeployError, match="exited with 3 \\(boom\\)"):
        run_task(OUTPUTS, ["refarch", "load", "--generate", "100"], session=session)


def test_cloud_settings_point_at_pinecone() -> None:
    settings = cloud_settings(Settings(), {"index_name": "catalog"})
    assert settings.index_backend == "pinecone" and settings.index_name == "catalog"


@pytest.mark.slow
def test_smoke_search_ranks_the_nearest_products(tmp_path: Path) -> None:
    from refarch.bootstrap import make_index
    from refarch.embeddings import get_embedder
    from refarch.index.process import find_free_port, start_index_server

    settings = Settings(home=tmp_path, index_port=find_free_port())
    server = start_index_server(settings, tmp_path / "index")
    try:
        index = make_index(settings, dimension=384, metric="cosine")
        embedder = get_embedder(settings)
        products = {"1": ("Insulated travel mug", "kitchen"),
                    "2": ("Lunch bag with cooler pocket", "bags"),
                    "3": ("Hiking boots, waterproof", "outdoor")}
        vectors = embedder.encode([name for name, _ in products.values()])
        index.upsert([(pid, [float(x) for x in vector], {"name": name, "category": category,
                                                          "price": 10.0})
                      for (pid, (name, category)), vector in zip(products.items(), vectors, strict=True)])
        hits = smoke_search(settings, OUTPUTS, "keep my coffee hot on the commute", top_k=2,
                            index=index, embedder=embedder)
        assert [h["name"] for h in hits][0] == "Insulated travel mug"
        assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"]
        assert set(hits[0]) == {"id", "score", "name", "category", "price"}
    finally:
        server.stop()


def test_standalone_tasks_run_in_the_tasks_security_group() -> None:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y",
                            region_name="us-east-1")
    client = session.client("ecs")
    stub = Stubber(client)
    outputs = {**OUTPUTS, "tasks_security_group_id": "sg-tasks",
               "task_definition_arns": {**OUTPUTS["task_definition_arns"], "migrate": "td-m"}}
    stub.add_response("run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, {
        "cluster": "refarch-dev-cluster", "taskDefinition": "td-m", "launchType": "FARGATE",
        "count": 1, "startedBy": "refarch-deploy",
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-tasks"],
            "assignPublicIp": "DISABLED"}},
        "overrides": {"containerOverrides": [{"name": "migrate", "command": ["refarch", "load"]}]},
    })
    stub.activate()

    class OneClient:
        def client(self, name: str) -> Any:
            return client

    assert run_task(outputs, ["refarch", "load"], session=OneClient(), role="migrate",
                    wait=False) == TASK
    stub.assert_no_pending_responses()
