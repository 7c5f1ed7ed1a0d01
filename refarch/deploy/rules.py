"""The security and wiring rules the stack must satisfy: one definition, run in two places.

Each rule is a plain function from a :class:`~refarch.deploy.model.Plan` to a list of
violations (empty when the rule holds). A rule that finds nothing to check reports that too
(no RDS instance at all is a violation of "RDS is private", not a pass). The same functions run

* offline, on the plan the program declares under mocks: ``refarch deploy plan`` prints the
  result, the driver refuses to deploy on a mandatory violation, and ``tests/infra`` runs every
  rule on the real program and on a plan broken on purpose for each one;
* in ``pulumi preview`` and ``pulumi up``, as the CrossGuard policy pack ``infra/policy``
  (:mod:`refarch.deploy.policy` turns the engine's resources into a Plan).

A rule is *mandatory* (a violation refuses the deploy) or *advisory* (a warning: the loudly
named unsafe opt-ins, a placeholder domain). A few rules need Pulumi's secret markers, which
the policy pack does not see; they are ``offline_only``. This module imports no Pulumi
package but the SDK's mocks helpers, so the pack's own environment can run it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from refarch.cli.container import APP_HEALTH_PATH, APP_PORT
from refarch.deploy import topology as t
from refarch.deploy.mocks import is_secret, unwrap
from refarch.deploy.rulebook import (  # noqa: F401 - re-exported: rules.RULES, rules.check, ...
    ADVISORY,
    MANDATORY,
    RULES,
    Rule,
    RuleResult,
    Violation,
    _num,
    check,
    get,
    mandatory,
    refusing_deploy,
    results,
    role_url_variable,
    rule,
)
from refarch.model_spec import DIMENSION, METRIC

if TYPE_CHECKING:
    from refarch.deploy.model import Plan

POSTGRES_PORT = 5432
#: Variable names that must never carry a plaintext value in a container's environment.
SECRET_NAMES = re.compile(r"(PASSWORD|SECRET|API_KEY|TOKEN|DATABASE_URL|CREDENTIALS)", re.I)


# --- helpers -------------------------------------------------------------------------------


def _metric_of(query: dict[str, Any]) -> dict[str, Any]:
    """The metric (name, namespace, dimensions) of one metric query of a scaling policy."""
    metric: dict[str, Any] = (query.get("metricStat") or {}).get("metric") or {}
    return metric


def _https(plan: Plan) -> bool:
    return any(listener.plain.get("protocol") == "HTTPS" for listener in plan.of_type(t.LISTENER))


def _service_needs_database(view: t.ServiceView) -> bool:
    main = view.main_container or {}
    secrets = t.container_secrets(main)
    return role_url_variable(view.role) in secrets or "DATABASE_URL" in secrets


# --- network security ------------------------------------------------------------------------


@rule("public-ingress-only-to-alb",
      "Only the load balancer is reachable from outside the VPC, only on 80 (and 443 with "
      "HTTPS), only from the configured CIDRs.")
def _public_ingress(plan: Plan) -> list[str]:
    roles = t.security_group_roles(plan)
    allowed_ports = {80, 443} if _https(plan) else {80}
    allowed_cidrs = set(plan.config.alb_ingress_cidrs)
    problems = []
    open_ports: set[int] = set()
    for r in t.ingress_rules(plan):
        inputs = r.plain
        cidr = inputs.get("cidrIpv4") or inputs.get("cidrIpv6") or inputs.get("prefixListId")
        if not cidr:
            continue
        role = roles.get(inputs.get("securityGroupId", ""), "unknown")
        low, high = _num(inputs.get("fromPort")), _num(inputs.get("toPort"))
        if role != "alb":
            problems.append(f"{r.name}: {role} security group open to {cidr}")
            continue
        if low is None or low != high or int(low) not in allowed_ports:
            problems.append(f"{r.name}: ALB open to {cidr} on ports {low}-{high}, "
                            f"only {sorted(allowed_ports)} allowed")
            continue
        if inputs.get("ipProtocol") != "tcp":
            problems.append(f"{r.name}: protocol {inputs.get('ipProtocol')!r}, not tcp")
        if cidr not in allowed_cidrs:
            problems.append(f"{r.name}: ALB open to {cidr}, not in albIngressCidrs")
        open_ports.add(int(low))
    if not open_ports:
        problems.append("the load balancer takes no traffic from outside: the app is unreachable")
    elif open_ports != allowed_ports:
        problems.append(f"ALB listens on {sorted(open_ports)}, expected {sorted(allowed_ports)}")
    return problems


@rule("app-ingress-only-from-alb",
      "The app's tasks take traffic only from the load balancer, only on the app port.")
def _app_ingress(plan: Plan) -> list[str]:
    roles = t.security_group_roles(plan)
    problems = []
    found = 0
    for r in t.ingress_rules(plan):
        inputs = r.plain
        if roles.get(inputs.get("securityGroupId", "")) != "app":
            continue
        source = roles.get(inputs.get("referencedSecurityGroupId") or "")
        if source != "alb":
            problems.append(f"{r.name}: app takes traffic from {source or 'a CIDR'}, not the ALB")
        elif not (_num(inputs.get("fromPort")) == _num(inputs.get("toPort")) == APP_PORT):
            problems.append(f"{r.name}: app open on {inputs.get('fromPort')}-"
                            f"{inputs.get('toPort')}, not {APP_PORT}")
        else:
            found += 1
    if not found:
        problems.append("no rule lets the load balancer reach the app")
    return problems


@rule("workers-take-no-ingress", "The relay and the indexer accept no inbound traffic.")
def _workers(plan: Plan) -> list[str]:
    roles = t.security_group_roles(plan)
    problems = [f"{r.name}: {roles[r.plain['securityGroupId']]} accepts inbound traffic"
                for r in t.ingress_rules(plan)
                if roles.get(r.plain.get("securityGroupId", "")) in ("relay", "indexer")]
    for role in ("relay", "indexer"):
        if role not in roles.values():
            problems.append(f"no {role} security group found")
    return problems


@rule("database-ingress-only-from-its-clients",
      "Postgres takes 5432 only from the services that use it (app, relay, the migration and "
      "repair tasks, and the indexer unless indexerReadsDatabase is off), never from a CIDR.")
def _database_ingress(plan: Plan) -> list[str]:
    roles = t.security_group_roles(plan)
    allowed = {"app", "relay", "tasks"} | (
        {"indexer"} if plan.config.indexer_reads_database else set())
    problems = []
    sources: set[str] = set()
    for r in t.ingress_rules(plan):
        inputs = r.plain
        if roles.get(inputs.get("securityGroupId", "")) != "database":
            continue
        source = roles.get(inputs.get("referencedSecurityGroupId") or "")
        if source is None:
            problems.append(f"{r.name}: database open to "
                            f"{inputs.get('cidrIpv4') or inputs.get('cidrIpv6') or 'an unknown source'}")
        elif source not in allowed:
            problems.append(f"{r.name}: database open to {source}")
        if not (_num(inputs.get("fromPort")) == _num(inputs.get("toPort")) == POSTGRES_PORT):
            problems.append(f"{r.name}: database open on {inputs.get('fromPort')}-"
                            f"{inputs.get('toPort')}, not {POSTGRES_PORT}")
        if source:
            sources.add(source)
    for role, view in t.services(plan).items():
        if _service_needs_database(view) and role not in sources:
            problems.append(f"{role} gets a database URL but cannot reach the database")
    if "database" not in roles.values():
        problems.append("no database security group found")
    return problems


@rule("security-groups-accounted-for",
      "Every security group belongs to a known role and declares no inline rules, so every "
      "rule is a separate resource the checks above see.")
def _groups_known(plan: Plan) -> list[str]:
    roles = t.security_group_roles(plan)
    problems = [] if plan.of_type(t.SG) else ["no security groups"]
    for sg in plan.of_type(t.SG):
        if sg.id not in roles:
            problems.append(f"{sg.name}: attached to nothing known")
        if sg.plain.get("ingress") or sg.plain.get("egress"):
            problems.append(f"{sg.name}: has inline rules")
    for r in plan.of_type(t.INGRESS) + plan.of_type(t.EGRESS):
        if r.plain.get("securityGroupId") not in roles:
            problems.append(f"{r.name}: rule on an unknown security group")
    return problems


@rule("services-in-private-subnets",
      "ECS tasks run in private subnets without public IPs; the ALB is internet-facing in public "
      "subnets.")
def _private_services(plan: Plan) -> list[str]:
    tiers = t.subnet_tiers(plan)
    problems = []
    views = t.services(plan)
    for role in t.SERVICE_ROLES:
        if role not in views:
            problems.append(f"no {role} service")
    for role, view in views.items():
        network = view.service.plain.get("networkConfiguration") or {}
        if network.get("assignPublicIp"):
            problems.append(f"{role}: tasks get public IPs")
        bad = [s for s in view.subnet_ids if tiers.get(s) != "private"]
        if bad or not view.subnet_ids:
            problems.append(f"{role}: runs outside the private subnets ({bad or 'none given'})")
    albs = plan.of_type(t.ALB)
    if not albs:
        problems.append("no load balancer")
    for alb in albs:
        if alb.plain.get("internal"):
            problems.append(f"{alb.name}: internal, the app is unreachable")
        subnets = alb.plain.get("subnets") or []
        if len(subnets) < 2 or any(tiers.get(s) != "public" for s in subnets):
            problems.append(f"{alb.name}: must sit in 2+ public subnets")
    return problems


# --- database ------------------------------------------------------------------------------------


@rule("database-private", "RDS is not publicly accessible and lives only in private subnets "
      "across at least two AZs.")
def _database_private(plan: Plan) -> list[str]:
    instances = plan.of_type(t.RDS)
    if not instances:
        return ["no RDS instance"]
    tiers = t.subnet_tiers(plan)
    problems = []
    for db in instances:
        inputs = db.plain
        if inputs.get("publiclyAccessible") is not False:
            problems.append(f"{db.name}: publiclyAccessible={inputs.get('publiclyAccessible')}")
        group = plan.by_reference(inputs.get("dbSubnetGroupName"))
        subnets = group.plain.get("subnetIds", []) if group else []
        if len(subnets) < 2:
            problems.append(f"{db.name}: subnet group spans {len(subnets)} subnet(s), need 2+")
        for subnet in subnets:
            if tiers.get(subnet) != "private":
                problems.append(f"{db.name}: subnet {subnet} is {tiers.get(subnet, 'unknown')}")
    return problems


@rule("database-encrypted-and-backed-up",
      "RDS storage is encrypted and automated backups are kept.")
def _database_durable(plan: Plan) -> list[str]:
    instances = plan.of_type(t.RDS)
    if not instances:
        return ["no RDS instance"]
    problems = []
    for db in instances:
        inputs = db.plain
        if inputs.get("storageEncrypted") is not True:
            problems.append(f"{db.name}: storage not encrypted")
        retention = _num(inputs.get("backupRetentionPeriod")) or 0
        if retention < 1:
            problems.append(f"{db.name}: backups off (retention {retention} days)")
    return problems


@rule("database-password-is-secret",
      "The generated master password reaches RDS and Secrets Manager only as a secret.",
      offline_only=True)
def _database_password(plan: Plan) -> list[str]:
    problems = []
    for db in plan.of_type(t.RDS):
        if not is_secret(db.inputs.get("password")):
            problems.append(f"{db.name}: password is not a secret value")
    urls = [v for v in plan.of_type(t.SECRET_VERSION)
            if "postgresql://" in str(unwrap(v.inputs.get("secretString", "")))]
    if not urls:
        problems.append("no Secrets Manager secret holds DATABASE_URL")
    for version in urls:
        if not is_secret(version.inputs.get("secretString")):
            problems.append(f"{version.name}: DATABASE_URL stored from a plaintext value")
    return problems


# --- queue -----------------------------------------------------------------------------------------


@rule("queues-encrypted", "Every SQS queue is encrypted at rest.")
def _queues_encrypted(plan: Plan) -> list[str]:
    queues = plan.of_type(t.QUEUE)
    if not queues:
        return ["no SQS queue"]
    return [f"{q.name}: not encrypted" for q in queues
            if not (q.plain.get("sqsManagedSseEnabled") or q.plain.get("kmsMasterKeyId"))]


@rule("dead-letter-queue-with-redrive",
      "The change queue is FIFO and moves a message to a FIFO DLQ after queueMaxReceiveCount "
      "receives; the DLQ allows redrive back to that queue only.")
def _dlq(plan: Plan) -> list[str]:
    queue, dlq = t.queues(plan)
    if queue is None:
        return ["no SQS queue"]
    policy = t.redrive(queue)
    if not policy:
        return [f"{queue.name}: no redrive policy, a failing change would retry forever"]
    problems = []
    if dlq is None:
        return [f"{queue.name}: redrives to {policy.get('deadLetterTargetArn')}, not a declared "
                "queue"]
    if int(policy.get("maxReceiveCount", 0)) != plan.config.queue_max_receive_count:
        problems.append(f"{queue.name}: maxReceiveCount {policy.get('maxReceiveCount')} != "
                        f"{plan.config.queue_max_receive_count}")
    for q in (queue, dlq):
        if not q.plain.get("fifoQueue"):
            problems.append(f"{q.name}: not FIFO")
    if t.redrive(dlq):
        problems.append(f"{dlq.name}: the DLQ itself redrives")
    allows = [a for a in plan.of_type(t.REDRIVE_ALLOW)
              if a.plain.get("queueUrl") == dlq.outputs.get("url")]
    if not allows:
        problems.append(f"{dlq.name}: no redrive-allow policy")
    for allow in allows:
        body = json.loads(allow.plain.get("redriveAllowPolicy") or "{}")
        if body.get("redrivePermission") != "byQueue" or body.get("sourceQueueArns") != [
            queue.outputs.get("arn")
        ]:
            problems.append(f"{allow.name}: DLQ accepts messages from {body}")
    return problems


@rule("dead-letter-alarm", "An alarm on the DLQ's depth notifies the stack's SNS topic.")
def _dlq_alarm(plan: Plan) -> list[str]:
    _, dlq = t.queues(plan)
    if dlq is None:
        return ["no dead-letter queue"]
    topics = {topic.outputs.get("arn") for topic in plan.of_type(t.TOPIC)}
    for alarm in plan.of_type(t.ALARM):
        inputs = alarm.plain
        if (inputs.get("namespace") == "AWS/SQS"
                and inputs.get("metricName") == "ApproximateNumberOfMessagesVisible"
                and (inputs.get("dimensions") or {}).get("QueueName") == dlq.outputs.get("name")
                and inputs.get("comparisonOperator") == "GreaterThanThreshold"
                and _num(inputs.get("threshold")) == 0
                and set(inputs.get("alarmActions") or []) & topics):
            return []
    return [f"no alarm notifies an SNS topic when {dlq.outputs.get('name')} holds a message"]


# --- secrets and IAM ----------------------------------------------------------------------------------


@rule("secrets-injected-not-plaintext",
      "Database URLs and PINECONE_API_KEY reach containers only as ECS secrets from the stack's "
      "Secrets Manager secrets; no secret-looking variable is plaintext environment.")
def _secrets_injected(plan: Plan) -> list[str]:
    secret_arns = {s.outputs.get("arn") for s in plan.of_type(t.SECRET)}
    problems = []
    views = t.services(plan)
    for task in plan.of_type(t.TASK_DEF):
        for container in t.containers_of(task):
            where = f"{task.plain.get('family')}/{container.get('name')}"
            for name in t.environment(container):
                if SECRET_NAMES.search(name):
                    problems.append(f"{where}: {name} is plaintext environment")
            for name, source in t.container_secrets(container).items():
                if source not in secret_arns:
                    problems.append(f"{where}: {name} comes from {source}, not a stack secret")
    indexer_needs = ("PINECONE_API_KEY",) + (
        (role_url_variable("indexer"),) if plan.config.indexer_reads_database else ())
    for role, needs in (("app", (role_url_variable("app"), "PINECONE_API_KEY")),
                        ("relay", (role_url_variable("relay"),)), ("indexer", indexer_needs)):
        view = views.get(role)
        injected = t.container_secrets(view.main_container or {}) if view else {}
        for name in needs:
            if name not in injected:
                problems.append(f"{role}: {name} is not injected from Secrets Manager")
    return problems


def _walk_strings(value: Any, inside_secret: bool = False) -> Iterator[tuple[str, bool]]:
    """Every string in ``value`` with whether it sits inside a secret.

    Only a string that *is* a secret counts as one: a secret list or map (Pulumi marks a whole
    container secret when one element is) hides its elements from the leak check instead of
    turning every one of them, registry addresses included, into a "secret"."""
    if is_secret(value):
        inner = value.get("value")
        if isinstance(inner, str):
            yield inner, True
        return
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk_strings(item, inside_secret)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _walk_strings(item, inside_secret)
    elif isinstance(value, str):
        yield value, inside_secret


#: The only (resource type, input) pairs meant to hold secret values.
SECRET_SINKS = {
    ("aws:rds/instance:Instance", "password"),
    ("aws:secretsmanager/secretVersion:SecretVersion", "secretString"),
    ("pulumi:providers:pinecone", "apiKey"),
    ("docker-build:index:Image", "registries"),
    # authenticate-oidc carries the provider's client secret.
    ("aws:lb/listener:Listener", "defaultActions"),
}


def _contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_secret(v) for v in value)
    return False


@rule("secret-values-never-plaintext",
      "Secret values (password, API key, DATABASE_URL) are stored only in secret storage "
      "(Secrets Manager, the RDS password, the providers) and appear in plaintext nowhere: no "
      "resource input, task definition or stack output.", offline_only=True)
def _no_leaks(plan: Plan) -> list[str]:
    secrets = {text for r in plan for text, secret in _walk_strings(r.inputs)
               if secret and len(text) >= 8}
    if not secrets:
        return ["no secret values found at all: the password and API key should be secrets"]
    problems = []
    for r in plan:
        for key, value in r.inputs.items():
            if _contains_secret(value) and (r.type, key) not in SECRET_SINKS:
                problems.append(f"{r.type} {r.name}: secret stored in {key}, which is not "
                                "secret storage")
        for text, secret in _walk_strings(r.inputs):
            if not secret and any(s in text for s in secrets):
                problems.append(f"{r.type} {r.name}: a secret value in plaintext")
                break
    for name, value in plan.outputs.items():
        if any(s in json.dumps(value) for s in secrets):
            problems.append(f"stack output {name}: contains a secret value")
    return problems


#: IAM actions that support no resource-level permission (``Resource: "*"`` is the only form).
NO_RESOURCE_ACTIONS = frozenset({
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
})


@rule("least-privilege-iam",
      "Inline IAM policies name their actions and resources: no wildcards; the execution role "
      "reads only the stack's secrets.")
def _iam(plan: Plan) -> list[str]:
    policies = plan.of_type(t.ROLE_POLICY)
    problems = [] if policies else ["no inline IAM policies: the tasks could not use the queue"]
    secret_arns = {s.outputs.get("arn") for s in plan.of_type(t.SECRET)}
    for policy in policies:
        document = json.loads(policy.plain.get("policy") or "{}")
        for statement in t.as_list(document.get("Statement")):
            actions = t.as_list(statement.get("Action"))
            resources = t.as_list(statement.get("Resource"))
            if any(a == "*" or a.endswith(":*") for a in actions):
                problems.append(f"{policy.name}: wildcard action {actions}")
            # ECS Exec's session channel actions take no resource ARN (AWS's own rule).
            unscoped_ok = bool(actions) and all(a in NO_RESOURCE_ACTIONS for a in actions)
            if ("*" in resources and not unscoped_ok) or not resources:
                problems.append(f"{policy.name}: applies to every resource")
            if "secretsmanager:GetSecretValue" in actions and not set(resources) <= secret_arns:
                problems.append(f"{policy.name}: reads secrets outside the stack: "
                                f"{sorted(set(resources) - secret_arns)}")
    return problems


# --- services -----------------------------------------------------------------------------------------


@rule("log-retention", "Every log group expires its logs after logRetentionDays, and every "
      "container logs to one of them.")
def _logs(plan: Plan) -> list[str]:
    groups = {g.plain.get("name"): g for g in plan.of_type(t.LOG_GROUP)}
    problems = []
    if not groups:
        problems.append("no log groups")
    for name, group in groups.items():
        retention = _num(group.plain.get("retentionInDays"))
        if retention != plan.config.log_retention_days:
            problems.append(f"{name}: retention {retention}, expected "
                            f"{plan.config.log_retention_days} days")
    for task in plan.of_type(t.TASK_DEF):
        for container in t.containers_of(task):
            logging = container.get("logConfiguration") or {}
            target = (logging.get("options") or {}).get("awslogs-group")
            if logging.get("logDriver") != "awslogs" or target not in groups:
                problems.append(f"{task.plain.get('family')}/{container.get('name')}: logs to "
                                f"{target or 'nowhere'}")
    return problems


@rule("migrations-before-services",
      "A standalone migration task (`migrate --role-passwords`, no service runs it) exists, and "
      "each service that uses the database starts only after a `wait-for-schema` container "
      "(`db wait`, as its own role) exited successfully.")
def _migrations(plan: Plan) -> list[str]:
    problems = []
    views = t.services(plan)
    if not any(_service_needs_database(v) for v in views.values()):
        return ["no service uses the database"]
    migrate = t.standalone_tasks(plan).get("migrate")
    if migrate is None:
        problems.append("no standalone migration task definition")
    else:
        container = t.containers_of(migrate)[0]
        if container.get("command") != ["migrate", "--role-passwords"]:
            problems.append(f"the migration task runs {container.get('command')}")
    for role, view in views.items():
        if not _service_needs_database(view):
            continue
        wait = next((c for c in view.containers if c.get("name") == "wait-for-schema"), None)
        main = view.main_container or {}
        if wait is None:
            problems.append(f"{role}: no wait-for-schema container")
            continue
        if wait.get("essential", True):
            problems.append(f"{role}: wait-for-schema is essential (its exit would stop the task)")
        command = wait.get("command") or []
        if command[:4] != ["db", "wait", "--role", role]:
            problems.append(f"{role}: wait-for-schema runs {command}")
        if set(t.container_secrets(wait)) != {role_url_variable(role)}:
            problems.append(f"{role}: wait-for-schema gets {sorted(t.container_secrets(wait))}, "
                            f"not only {role_url_variable(role)}")
        if {"containerName": "wait-for-schema", "condition": "SUCCESS"} not in (
                main.get("dependsOn") or []):
            problems.append(f"{role}: starts without waiting for the schema")
    return problems


@rule("app-behind-health-checked-alb",
      "The ALB forwards to a target group that health-checks Streamlit's /_stcore/health on the "
      "app port and that the app service registers with.")
def _alb(plan: Plan) -> list[str]:
    groups = plan.of_type(t.TARGET_GROUP)
    if not groups:
        return ["no target group"]
    problems = []
    views = t.services(plan)
    for group in groups:
        inputs = group.plain
        health = inputs.get("healthCheck") or {}
        if health.get("path") != APP_HEALTH_PATH:
            problems.append(f"{group.name}: health check on {health.get('path')}")
        if _num(inputs.get("port")) != APP_PORT or inputs.get("targetType") != "ip":
            problems.append(f"{group.name}: targets port {inputs.get('port')} "
                            f"({inputs.get('targetType')})")
        arn = group.outputs.get("arn")
        forwarded = [lst for lst in plan.of_type(t.LISTENER)
                     if any(a.get("targetGroupArn") == arn
                            for a in lst.plain.get("defaultActions") or [])]
        if not forwarded:
            problems.append(f"{group.name}: no listener forwards to it")
        app = views.get("app")
        registrations = (app.service.plain.get("loadBalancers") or []) if app else []
        if not any(lb.get("targetGroupArn") == arn and lb.get("containerName") == "app"
                   and _num(lb.get("containerPort")) == APP_PORT for lb in registrations):
            problems.append(f"{group.name}: the app service does not register with it")
    return problems


@rule("services-wired-to-queue-and-index",
      "Every service's environment points at the stack's queue, DLQ and index, with the receive "
      "count the redrive policy uses.")
def _wiring(plan: Plan) -> list[str]:
    queue, dlq = t.queues(plan)
    indexes = plan.of_type(t.INDEX)
    if queue is None or dlq is None or not indexes:
        return ["queue, dead-letter queue or index missing"]
    policy = t.redrive(queue) or {}
    expected = {
        "REFARCH_QUEUE": "sqs",
        "REFARCH_SQS_QUEUE_URL": queue.outputs.get("url"),
        "REFARCH_SQS_DLQ_URL": dlq.outputs.get("url"),
        "REFARCH_QUEUE_MAX_RECEIVES": str(int(policy.get("maxReceiveCount", -1))),
        "REFARCH_QUEUE_VISIBILITY_TIMEOUT":
            str(int(queue.plain.get("visibilityTimeoutSeconds", -1))),
        "REFARCH_INDEX": "pinecone",
        "REFARCH_INDEX_NAME": indexes[0].plain.get("name"),
        "AWS_REGION": plan.config.aws_region,
    }
    problems = []
    views = t.services(plan)
    for role in t.SERVICE_ROLES:
        view = views.get(role)
        if view is None or view.main_container is None:
            problems.append(f"no {role} container")
            continue
        env = t.environment(view.main_container)
        for name, value in expected.items():
            if env.get(name) != value:
                problems.append(f"{role}: {name}={env.get(name)!r}, expected {value!r}")
    return problems


# --- scaling -----------------------------------------------------------------------------------------


def _scaling(plan: Plan, role: str) -> tuple[Any, list[Any]]:
    views = t.services(plan)
    view = views.get(role)
    if view is None:
        return None, []
    name = view.service.plain.get("name")
    targets = [x for x in plan.of_type(t.SCALING_TARGET)
               if str(x.plain.get("resourceId", "")).endswith(f"/{name}")]
    policies = [p for p in plan.of_type(t.SCALING_POLICY)
                if str(p.plain.get("resourceId", "")).endswith(f"/{name}")]
    return (targets[0] if targets else None), policies


@rule("indexer-scales-on-backlog-per-task",
      "The indexer scales between indexerMinTasks and indexerMaxTasks by target tracking on "
      "visible queue messages per running task, never on CPU.")
def _indexer_scaling(plan: Plan) -> list[str]:
    target, policies = _scaling(plan, "indexer")
    if target is None:
        return ["the indexer has no scalable target"]
    problems = []
    bounds = (_num(target.plain.get("minCapacity")), _num(target.plain.get("maxCapacity")))
    if bounds != (plan.config.indexer_min_tasks, plan.config.indexer_max_tasks):
        problems.append(f"indexer bounds {bounds}, expected "
                        f"({plan.config.indexer_min_tasks}, {plan.config.indexer_max_tasks})")
    queue, _ = t.queues(plan)
    queue_name = queue.outputs.get("name") if queue else None
    good = 0
    for policy in policies:
        config = policy.plain.get("targetTrackingScalingPolicyConfiguration") or {}
        if config.get("predefinedMetricSpecification"):
            problems.append(f"{policy.name}: indexer scales on a predefined metric "
                            f"({config['predefinedMetricSpecification']})")
            continue
        metrics = (config.get("customizedMetricSpecification") or {}).get("metrics") or []
        by_id = {m.get("id"): m for m in metrics}
        returned = [m for m in metrics if m.get("returnData")]
        metric_by_id = {i: _metric_of(m) for i, m in by_id.items()}
        ok = len(returned) == 1 and returned[0].get("expression")
        expression = returned[0].get("expression", "") if ok else ""
        backlog = [i for i, metric in metric_by_id.items()
                   if metric.get("metricName") == "ApproximateNumberOfMessagesVisible"
                   and {"name": "QueueName", "value": queue_name} in (metric.get("dimensions") or [])]
        tasks = [i for i, metric in metric_by_id.items()
                 if metric.get("metricName") == "RunningTaskCount"]
        if not (backlog and tasks and re.search(
                rf"\b{re.escape(backlog[0])}\s*/\s*{re.escape(tasks[0])}\b", expression)):
            problems.append(f"{policy.name}: metric is not queue backlog / running tasks "
                            f"({expression or 'no expression'})")
            continue
        if _num(config.get("targetValue")) != plan.config.indexer_backlog_per_task:
            problems.append(f"{policy.name}: target {config.get('targetValue')} messages per "
                            f"task, expected {plan.config.indexer_backlog_per_task}")
            continue
        good += 1
    if not good and not problems:
        problems.append("the indexer has no scaling policy")
    return problems


@rule("app-scales-on-cpu-or-requests",
      "The app scales between appMinTasks and appMaxTasks on CPU or requests per target.")
def _app_scaling(plan: Plan) -> list[str]:
    target, policies = _scaling(plan, "app")
    if target is None:
        return ["the app has no scalable target"]
    problems = []
    bounds = (_num(target.plain.get("minCapacity")), _num(target.plain.get("maxCapacity")))
    if bounds != (plan.config.app_min_tasks, plan.config.app_max_tasks):
        problems.append(f"app bounds {bounds}, expected "
                        f"({plan.config.app_min_tasks}, {plan.config.app_max_tasks})")
    kinds = {((p.plain.get("targetTrackingScalingPolicyConfiguration") or {})
              .get("predefinedMetricSpecification") or {}).get("predefinedMetricType")
             for p in policies}
    if not kinds & {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}:
        problems.append(f"the app scales on {sorted(k for k in kinds if k) or 'nothing'}")
    return problems


# --- index, image, tags ----------------------------------------------------------------------------


@rule("index-matches-model",
      "The Pinecone index is serverless, with the embedding model's dimension and metric.")
def _index(plan: Plan) -> list[str]:
    indexes = plan.of_type(t.INDEX)
    if not indexes:
        return ["no Pinecone index"]
    problems = []
    for index in indexes:
        inputs = index.plain
        if _num(inputs.get("dimension")) != DIMENSION:
            problems.append(f"{index.name}: dimension {inputs.get('dimension')}, the model "
                            f"makes {DIMENSION}")
        if inputs.get("metric") != METRIC:
            problems.append(f"{index.name}: metric {inputs.get('metric')}, expected {METRIC}")
        if not (inputs.get("spec") or {}).get("serverless"):
            problems.append(f"{index.name}: not serverless")
    return problems


@rule("image-scanned-and-encrypted",
      "The image repository scans on push and encrypts images; services run the stack's image.")
def _image(plan: Plan) -> list[str]:
    repos = plan.of_type(t.REPOSITORY)
    if not repos:
        return ["no ECR repository"]
    problems = []
    for repo in repos:
        inputs = repo.plain
        if not (inputs.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            problems.append(f"{repo.name}: no scan on push")
        if not inputs.get("encryptionConfigurations"):
            problems.append(f"{repo.name}: no encryption configuration")
    images = {str(c.get("image")) for task in plan.of_type(t.TASK_DEF)
              for c in t.containers_of(task)}
    expected = plan.config.image_uri or repos[0].outputs.get("repositoryUrl", "")
    for image in images:
        if not image.startswith(expected):
            problems.append(f"a container runs {image}, not {expected}")
    if len(images) != 1:
        problems.append(f"services run {len(images)} different images, expected one")
    return problems


@cache
def taggable(type_: str) -> bool:
    """Whether resources of ``type_`` accept cloud tags (AWS resources, the Pinecone index)."""
    parts = type_.split(":")
    if len(parts) != 3 or parts[0] not in ("aws", "pinecone"):
        return False
    module = parts[1].split("/")[0]
    if parts[0] == "aws":
        package = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{module}")
    else:
        package = importlib.import_module("pinecone_pulumi")
    cls = getattr(package, parts[2], None)
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


@rule("everything-tagged", "Every resource that takes tags carries project, stack and "
      "managed-by (and the configured extra tags).")
def _tags(plan: Plan) -> list[str]:
    required = plan.config.tags
    problems = []
    checked = 0
    for r in plan.cloud_resources():
        if not taggable(r.type):
            continue
        checked += 1
        tags = r.plain.get("tags") or {}
        missing = {k: v for k, v in required.items() if tags.get(k) != v}
        if missing:
            problems.append(f"{r.type} {r.name}: missing tags {missing}")
    if not checked:
        problems.append("no taggable resources found")
    return problems


# The production-safety rules register themselves into RULES (they use the helpers above).
from refarch.deploy import safety_rules as _safety_rules  # noqa: E402, F401
