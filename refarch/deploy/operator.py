"""Operator access to a deployed stack: the migration task, sign-in users, a psql prompt.

Everything here reads the stack's outputs (``refarch deploy outputs``) and talks to AWS with
boto3; nothing opens the database to the internet.

* :func:`run_migration` runs the standalone ``migrate`` task (the only holder of the master
  URL) and waits for it; ``refarch deploy up`` calls it after every update, and the services'
  ``wait-for-schema`` containers start their service once it succeeded.
* :func:`add_user` creates a user in the stack's Cognito user pool (no self sign-up); Cognito
  mails a temporary password, changed at the first sign-in.
* :func:`psql_command` is the ECS Exec command that opens ``psql`` inside a running task of a
  service, as that service's own role (``refarch deploy psql``). It needs the AWS CLI and the
  Session Manager plugin locally; every session is recorded by CloudTrail.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Mapping
from typing import Any

from refarch.errors import DeployError

FIX_EXEC_TOOLS = ("install the AWS CLI v2 and the Session Manager plugin (https://docs.aws.amazon."
                  "com/systems-manager/latest/userguide/session-manager-working-with-install-"
                  "plugin.html); ECS Exec needs both")
SERVICES = ("app", "relay", "indexer")
#: The migration task's command (its task definition's own, passed again as the override).
MIGRATE_COMMAND = ("migrate", "--role-passwords")


def _output(outputs: Mapping[str, Any], name: str) -> Any:
    value = outputs.get(name)
    if not value:
        raise DeployError(f"the stack has no {name!r} output: deploy it first "
                          "(refarch deploy up)")
    return value


def run_migration(session: Any, outputs: Mapping[str, Any]) -> str:
    """Run the migration task, wait until it stops, and return its task ARN.

    ``session`` is a boto3 session. DeployError when the task cannot start or exits non-zero
    (with its stop reason and its log group).
    """
    from refarch.deploy.smoke import run_task

    if not _output(outputs, "task_definition_arns").get("migrate"):
        raise DeployError("the stack has no migrate task definition: update it (refarch "
                          "deploy up)")
    return run_task(outputs, list(MIGRATE_COMMAND), session=session, role="migrate")


def add_user(cognito: Any, outputs: Mapping[str, Any], email: str) -> str:
    """Create a sign-in user; Cognito e-mails them a temporary password. Returns the pool id."""
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise DeployError(f"{email!r} is not an e-mail address")
    pool = outputs.get("user_pool_id")
    if not pool:
        raise DeployError("the stack has no Cognito user pool (authProvider=oidc or "
                          "unsafeNoSignIn): add users at your identity provider")
    try:
        cognito.admin_create_user(
            UserPoolId=pool, Username=email, DesiredDeliveryMediums=["EMAIL"],
            UserAttributes=[{"Name": "email", "Value": email},
                            {"Name": "email_verified", "Value": "true"}])
    except cognito.exceptions.UsernameExistsException:
        raise DeployError(f"{email} already has an account in {pool}") from None
    return str(pool)


def running_task(ecs: Any, outputs: Mapping[str, Any], service: str) -> str:
    """The ARN of a running task of ``service`` (DeployError when none runs)."""
    if service not in SERVICES:
        raise DeployError(f"unknown service {service!r}; use one of: {', '.join(SERVICES)}")
    cluster = _output(outputs, "cluster_name")
    name = _output(outputs, "service_names").get(service)
    tasks = ecs.list_tasks(cluster=cluster, serviceName=name,
                           desiredStatus="RUNNING").get("taskArns") or []
    if not tasks:
        raise DeployError(f"no {service} task is running in {cluster}")
    return str(tasks[0])


def psql_command(outputs: Mapping[str, Any], region: str, service: str, task_arn: str) -> list[str]:
    """The ``aws ecs execute-command`` argv that opens psql in ``task_arn`` as ``service``'s
    role (its own ``REFARCH_<ROLE>_DATABASE_URL``, TLS verified)."""
    variable = f"REFARCH_{service.upper()}_DATABASE_URL"
    inner = f'exec psql "${variable}"'
    return ["aws", "ecs", "execute-command", "--region", region,
            "--cluster", str(_output(outputs, "cluster_name")), "--task", task_arn,
            "--container", service, "--interactive",
            "--command", f"/bin/sh -c {shlex.quote(inner)}"]


def check_exec_tools() -> None:
    """DeployError unless the AWS CLI and the Session Manager plugin are on PATH."""
    missing = [tool for tool in ("aws", "session-manager-plugin") if shutil.which(tool) is None]
    if missing:
        raise DeployError(f"{' and '.join(missing)} not found: {FIX_EXEC_TOOLS}")
