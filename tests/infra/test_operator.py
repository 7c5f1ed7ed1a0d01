"""Operator access against the fake Pulumi CLI (the stack's outputs) and botocore's Stubber
(the AWS answers): the migration task after up, add-user, and the psql command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from refarch.cli import main
from refarch.deploy import driver as driver_module
from refarch.deploy.driver import Deployer
from refarch.errors import DeployError
from refarch.settings import Settings
from tests.infra.conftest import PINNED_IMAGE
from tests.infra.fake_pulumi import FakePulumi
from tests.infra.test_driver import DOMAIN, KEY, aws_env, with_credentials  # noqa: F401

CLUSTER = "refarch-dev-cluster"
MIGRATE = "arn:aws:ecs:us-east-1:123456789012:task-definition/refarch-dev-migrate:3"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/refarch-dev-cluster/abc123"
OUTPUTS = {
    "app_url": "https://search.example.org",
    "cluster_name": CLUSTER,
    "task_definition_arns": {"migrate": MIGRATE},
    "private_subnet_ids": ["subnet-a", "subnet-b"],
    "tasks_security_group_id": "sg-tasks",
    "service_names": {"app": "refarch-dev-app", "relay": "refarch-dev-relay",
                      "indexer": "refarch-dev-indexer"},
    "user_pool_id": "us-east-1_pool",
}


class StubbedAws:
    """A boto3 session whose clients answer from Stubbers the test loads."""

    def __init__(self) -> None:
        self.session = boto3.Session(region_name="us-east-1")
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}
        for name in ("ecs", "cognito-idp"):
            client = self.session.client(name, region_name="us-east-1")
            self.clients[name] = client
            self.stubbers[name] = Stubber(client)
            self.stubbers[name].activate()

    def __call__(self) -> StubbedAws:
        return self

    def get_credentials(self) -> Any:
        return self.session.get_credentials()

    def client(self, name: str, **_: Any) -> Any:
        return self.clients[name]


def _migration(aws: StubbedAws, exit_code: int = 0) -> None:
    ecs = aws.stubbers["ecs"]
    ecs.add_response("run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, {
        "cluster": CLUSTER, "taskDefinition": MIGRATE, "launchType": "FARGATE", "count": 1,
        "startedBy": "refarch-deploy",
        "overrides": {"containerOverrides": [{"name": "migrate",
                                              "command": ["migrate", "--role-passwords"]}]},
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-tasks"],
            "assignPublicIp": "DISABLED"}}})
    stopped = {"tasks": [{"taskArn": TASK, "lastStatus": "STOPPED",
                          "stoppedReason": "Essential container in task exited",
                          "containers": [{"name": "migrate", "exitCode": exit_code}]}]}
    ecs.add_response("describe_tasks", stopped, {"cluster": CLUSTER, "tasks": [TASK]})
    ecs.add_response("describe_tasks", stopped, {"cluster": CLUSTER, "tasks": [TASK]})


def _deployer(tmp_path: Path, fake: FakePulumi, aws: StubbedAws, **kwargs: Any) -> Deployer:
    settings = Settings.from_env({"REFARCH_HOME": str(tmp_path / "home"), "PINECONE_API_KEY": KEY,
                                  "REFARCH_IMAGE_URI": PINNED_IMAGE})
    return Deployer(settings, pulumi_command=fake, session_factory=aws, progress_bar=False,
                    write=lambda line: None, overrides={"domainName": DOMAIN}, **kwargs)


def test_up_runs_the_migration_task_after_the_update(with_credentials: None,  # noqa: F811
                                                      tmp_path: Path) -> None:
    aws = StubbedAws()
    _migration(aws)
    fake = FakePulumi(outputs=OUTPUTS)
    result = _deployer(tmp_path, fake, aws).up()
    assert result.outputs["cluster_name"] == CLUSTER
    aws.stubbers["ecs"].assert_no_pending_responses()  # run, waited for, checked


def test_a_failed_migration_fails_up_with_where_to_look(with_credentials: None,  # noqa: F811
                                                        tmp_path: Path) -> None:
    aws = StubbedAws()
    _migration(aws, exit_code=1)
    with pytest.raises(DeployError, match=r"exited with 1.*log group /refarch-dev/migrate"):
        _deployer(tmp_path, FakePulumi(outputs=OUTPUTS), aws).up()


def test_add_user(with_credentials: None, tmp_path: Path) -> None:  # noqa: F811
    aws = StubbedAws()
    fake = FakePulumi(outputs=OUTPUTS)
    deployer = _deployer(tmp_path, fake, aws, run_migrations=False)
    deployer.up()
    request = {"UserPoolId": "us-east-1_pool", "Username": "ana@example.org",
               "DesiredDeliveryMediums": ["EMAIL"],
               "UserAttributes": [{"Name": "email", "Value": "ana@example.org"},
                                  {"Name": "email_verified", "Value": "true"}]}
    aws.stubbers["cognito-idp"].add_response("admin_create_user", {"User": {}}, request)
    assert deployer.add_user("ana@example.org") == "us-east-1_pool"
    aws.stubbers["cognito-idp"].add_client_error("admin_create_user", "UsernameExistsException")
    with pytest.raises(DeployError, match="already has an account"):
        deployer.add_user("ana@example.org")
    with pytest.raises(DeployError, match="not an e-mail address"):
        deployer.add_user("ana")


def test_psql_opens_a_session_in_a_running_task_as_its_role(
        with_credentials: None, tmp_path: Path) -> None:  # noqa: F811
    aws = StubbedAws()
    deployer = _deployer(tmp_path, FakePulumi(outputs=OUTPUTS), aws, run_migrations=False)
    deployer.up()
    aws.stubbers["ecs"].add_response(
        "list_tasks", {"taskArns": [TASK]},
        {"cluster": CLUSTER, "serviceName": "refarch-dev-relay", "desiredStatus": "RUNNING"})
    command = deployer.psql_command("relay")
    assert command[:3] == ["aws", "ecs", "execute-command"]
    assert command[command.index("--task") + 1] == TASK
    assert command[command.index("--container") + 1] == "relay"
    assert command[-1] == """/bin/sh -c 'exec psql "$REFARCH_RELAY_DATABASE_URL"'"""
    aws.stubbers["ecs"].add_response("list_tasks", {"taskArns": []})
    with pytest.raises(DeployError, match="no app task is running"):
        deployer.psql_command("app")


def test_cli_psql_print(with_credentials: None, tmp_path: Path,  # noqa: F811
                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    aws = StubbedAws()
    fake = FakePulumi(outputs=OUTPUTS)
    _deployer(tmp_path, fake, aws, run_migrations=False).up()
    aws.stubbers["ecs"].add_response("list_tasks", {"taskArns": [TASK]})
    monkeypatch.setattr(driver_module, "find_pulumi_command", lambda: fake)
    monkeypatch.setattr(driver_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(driver_module.Deployer, "_sessions", lambda self: aws)
    monkeypatch.setenv("REFARCH_HOME", str(tmp_path / "home"))
    assert main(["deploy", "psql", "--print"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("aws ecs execute-command --region us-east-1 --cluster refarch-dev-cluster")
    assert "REFARCH_APP_DATABASE_URL" in out
