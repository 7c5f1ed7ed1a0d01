"""Checking a fresh deployment: the app answers, products load, search finds them.

Used by ``notebooks/06_deploy_with_pulumi.ipynb`` after ``up``. The database is private, so
products are loaded by a one-off ECS task inside the VPC (the app's task definition running
``refarch load --generate N``, migrations first); the relay and indexer then sync them to
Pinecone, which :func:`smoke_search` queries from here with the same embedding model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from refarch.cli.container import APP_HEALTH_PATH
from refarch.errors import DeployError
from refarch.settings import Settings


def wait_for_app(
    app_url: str,
    timeout: float = 900.0,
    interval: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll the app's health endpoint behind the load balancer until it answers 200.

    Returns the seconds waited; raises DeployError with the last answer after ``timeout``.
    New Fargate tasks pull the image and load the model first: minutes, not seconds.
    """
    import httpx

    url = app_url.rstrip("/") + APP_HEALTH_PATH
    started = time.monotonic()
    last = "no answer yet"
    while True:
        try:
            response = httpx.get(url, timeout=10.0, follow_redirects=True)
            if response.status_code == 200:
                return time.monotonic() - started
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() - started >= timeout:
            raise DeployError(f"the app at {url} is not healthy after {timeout:.0f} s ({last}); "
                              "see the app's log group in CloudWatch")
        sleep(interval)


#: Task definitions no service runs; they share the tasks' security group.
STANDALONE_TASKS = ("migrate", "reconcile")


def run_task(
    outputs: Mapping[str, Any],
    command: Sequence[str],
    *,
    session: Any = None,
    role: str = "app",
    wait: bool = True,
) -> str:
    """Run ``command`` once in the ``role`` service's task definition, inside the VPC.

    ``role`` is a service (``app``, ``relay``, ``indexer``: that service's credentials and
    security group) or a standalone task (``migrate``: the master credentials, which
    ``refarch load`` needs; ``reconcile``), which run in the tasks' security group. Uses the
    stack outputs (cluster, task definitions, private subnets, security groups). Returns the
    task ARN; with ``wait``, waits for it to stop and raises DeployError unless the command
    exited 0.
    """
    if session is None:
        import boto3

        session = boto3.Session()
    ecs = session.client("ecs")
    if role in STANDALONE_TASKS:
        security_group = outputs["tasks_security_group_id"]
    else:
        security_group = outputs["service_security_group_ids"][role]
    response = ecs.run_task(
        cluster=outputs["cluster_name"],
        taskDefinition=outputs["task_definition_arns"][role],
        launchType="FARGATE",
        count=1,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(outputs["private_subnet_ids"]),
                "securityGroups": [security_group],
                "assignPublicIp": "DISABLED",
            }
        },
        overrides={"containerOverrides": [{"name": role, "command": list(command)}]},
        startedBy="refarch-deploy",
    )
    if response.get("failures") or not response.get("tasks"):
        raise DeployError(f"ECS could not start {' '.join(command)}: {response.get('failures')}")
    task_arn: str = response["tasks"][0]["taskArn"]
    if not wait:
        return task_arn
    ecs.get_waiter("tasks_stopped").wait(
        cluster=outputs["cluster_name"], tasks=[task_arn],
        WaiterConfig={"Delay": 10, "MaxAttempts": 120},
    )
    task = ecs.describe_tasks(cluster=outputs["cluster_name"], tasks=[task_arn])["tasks"][0]
    container: dict[str, Any] = next((c for c in task.get("containers") or [] if c["name"] == role), {})
    if container.get("exitCode") != 0:
        group = f"/{str(outputs['cluster_name']).removesuffix('-cluster')}/{role}"
        raise DeployError(
            f"`{' '.join(command)}` exited with {container.get('exitCode')} "
            f"({container.get('reason') or task.get('stoppedReason')}); see the log group "
            f"{group}"
        )
    return task_arn


def cloud_settings(settings: Settings, outputs: Mapping[str, Any]) -> Settings:
    """The settings a client outside the VPC uses for the deployed index."""
    return settings.with_(index_backend="pinecone", index_name=outputs["index_name"])


def smoke_search(
    settings: Settings,
    outputs: Mapping[str, Any],
    query: str,
    top_k: int = 5,
    *,
    index: Any = None,
    embedder: Any = None,
) -> list[dict[str, Any]]:
    """Embed ``query`` and ask the deployed index for the nearest products.

    Returns ``[{"id", "score", "name", "category", "price"}]``, best first (metadata as the
    indexer stored it). ``index`` and ``embedder`` default to the deployed Pinecone index and
    refarch's model.
    """
    if index is None:
        from refarch.bootstrap import make_index

        index = make_index(cloud_settings(settings, outputs))
    if embedder is None:
        from refarch.embeddings import get_embedder

        embedder = get_embedder(settings)
    vector = [float(x) for x in embedder.encode_query(query)]
    matches = index.query(vector, top_k=top_k)
    return [
        {"id": m.id, "score": round(float(m.score), 4), "name": m.metadata.get("name"),
         "category": m.metadata.get("category"), "price": m.metadata.get("price")}
        for m in matches
    ]


def wait_for_search(
    settings: Settings,
    outputs: Mapping[str, Any],
    query: str,
    timeout: float = 900.0,
    interval: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[dict[str, Any]], float]:
    """Repeat :func:`smoke_search` until it finds something (the pipeline needs a moment to
    sync newly loaded products). Returns the hits and the seconds waited; DeployError after
    ``timeout`` with nothing found."""
    started = time.monotonic()
    while True:
        hits = smoke_search(settings, outputs, query)
        if hits:
            return hits, time.monotonic() - started
        if time.monotonic() - started >= timeout:
            raise DeployError(f"search found nothing after {timeout:.0f} s: check the relay and "
                              "indexer log groups and the dead-letter queue")
        sleep(interval)
