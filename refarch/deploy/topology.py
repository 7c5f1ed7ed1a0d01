"""Reading the architecture back out of a plan: who is who, and what is wired to what.

Everything here is derived from the recorded resources and the references between them (ids,
ARNs, URLs), never from resource names: the app service is the ECS service whose task runs the
``app`` container, the app's security group is the one that service is attached to, a subnet is
public when its route table sends 0.0.0.0/0 to an internet gateway. The rules
(:mod:`refarch.deploy.rules`) and the diagram (:mod:`refarch.deploy.diagram`) both use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from refarch.deploy.model import Plan, PlannedResource

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_ASSOC = "aws:ec2/routeTableAssociation:RouteTableAssociation"
IGW = "aws:ec2/internetGateway:InternetGateway"
NAT = "aws:ec2/natGateway:NatGateway"
RDS = "aws:rds/instance:Instance"
RDS_SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
QUEUE = "aws:sqs/queue:Queue"
REDRIVE_ALLOW = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_ROLE = "aws:iam/role:Role"
INDEX = "pinecone:index/index:Index"
REPOSITORY = "aws:ecr/repository:Repository"
IMAGE = "docker-build:index:Image"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
SCHEDULE = "aws:scheduler/schedule:Schedule"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
USER_POOL = "aws:cognito/userPool:UserPool"
USER_POOL_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
CERTIFICATE = "aws:acm/certificate:Certificate"
CERTIFICATE_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"

SERVICE_ROLES = ("app", "relay", "indexer")


@dataclass(frozen=True)
class ServiceView:
    """One ECS service with its task definition, containers and security groups."""

    role: str
    service: PlannedResource
    task_definition: PlannedResource | None
    containers: list[dict[str, Any]]
    security_group_ids: list[str]
    subnet_ids: list[str]

    @property
    def main_container(self) -> dict[str, Any] | None:
        """The container named after the role (``app``, ``relay``, ``indexer``)."""
        return next((c for c in self.containers if c.get("name") == self.role), None)


def containers_of(task_definition: PlannedResource) -> list[dict[str, Any]]:
    """The parsed container definitions of a task definition."""
    raw = task_definition.plain.get("containerDefinitions", "[]")
    parsed = json.loads(raw) if isinstance(raw, str) else raw
    return list(parsed or [])


def services(plan: Plan) -> dict[str, ServiceView]:
    """ECS services by role; the role is the name of the essential container of their task."""
    found: dict[str, ServiceView] = {}
    for service in plan.of_type(SERVICE):
        inputs = service.plain
        task_definition = plan.by_reference(inputs.get("taskDefinition"))
        containers = containers_of(task_definition) if task_definition else []
        essential = [c["name"] for c in containers if c.get("essential", True)]
        role = essential[0] if len(essential) == 1 else service.name
        network = inputs.get("networkConfiguration") or {}
        found[role] = ServiceView(
            role=role,
            service=service,
            task_definition=task_definition,
            containers=containers,
            security_group_ids=list(network.get("securityGroups") or []),
            subnet_ids=list(network.get("subnets") or []),
        )
    return found


def security_group_roles(plan: Plan) -> dict[str, str]:
    """Security group id -> role (``alb``, ``app``, ``relay``, ``indexer``, ``database``),
    from what each group is attached to."""
    roles: dict[str, str] = {}
    for alb in plan.of_type(ALB):
        for sg in alb.plain.get("securityGroups") or []:
            roles[sg] = "alb"
    for role, view in services(plan).items():
        for sg in view.security_group_ids:
            roles[sg] = role
    for db in plan.of_type(RDS):
        for sg in db.plain.get("vpcSecurityGroupIds") or []:
            roles[sg] = "database"
    # One-off and scheduled tasks: the groups their schedules run them in.
    for schedule in plan.of_type(SCHEDULE):
        ecs = (schedule.plain.get("target") or {}).get("ecsParameters") or {}
        for sg in (ecs.get("networkConfiguration") or {}).get("securityGroups") or []:
            roles.setdefault(sg, "tasks")
    return roles


def standalone_tasks(plan: Plan) -> dict[str, PlannedResource]:
    """Task definitions no ECS service runs (migration, repair), by their container's name."""
    used = {view.task_definition.urn for view in services(plan).values()
            if view.task_definition is not None}
    found: dict[str, PlannedResource] = {}
    for task in plan.of_type(TASK_DEF):
        if task.urn in used:
            continue
        names = [c.get("name") for c in containers_of(task)]
        found[str(names[0]) if len(names) == 1 else task.name] = task
    return found


def database_urls(plan: Plan) -> dict[str, str]:
    """Secrets Manager secret ARN -> the libpq URL its version stores (plain text)."""
    found: dict[str, str] = {}
    for version in plan.of_type(SECRET_VERSION):
        text = version.plain.get("secretString")
        secret = plan.by_reference(version.plain.get("secretId"))
        if isinstance(text, str) and text.startswith("postgresql://") and secret is not None:
            found[str(secret.outputs.get("arn") or secret.plain.get("arn") or secret.id)] = text
    return found


def url_user(url: str) -> str:
    """The user name of a ``postgresql://user:password@host/db`` URL."""
    rest = url.split("://", 1)[-1]
    return rest.split("@", 1)[0].split(":", 1)[0] if "@" in rest else ""


def role_statements(plan: Plan, role_arn: Any) -> list[dict[str, Any]]:
    """Statements of the inline policies of the IAM role with this ARN (none if unknown)."""
    return policy_statements(plan, role_arn) if isinstance(role_arn, str) else []


def ingress_rules(plan: Plan) -> list[PlannedResource]:
    """Every ingress rule: the separate rule resources plus any inline ``ingress`` blocks
    (returned as pseudo-rules so that nothing can hide from the checks)."""
    rules = list(plan.of_type(INGRESS))
    for sg in plan.of_type(SG):
        for n, block in enumerate(sg.plain.get("ingress") or []):
            cidrs = list(block.get("cidrBlocks") or []) + list(block.get("ipv6CidrBlocks") or [])
            for m, cidr in enumerate(cidrs or [None]):
                inputs = {
                    "securityGroupId": sg.id,
                    "fromPort": block.get("fromPort"),
                    "toPort": block.get("toPort"),
                    "ipProtocol": block.get("protocol"),
                    "cidrIpv4": cidr,
                    "referencedSecurityGroupId": (block.get("securityGroups") or [None])[0],
                }
                rules.append(PlannedResource(INGRESS, f"{sg.name}-inline-{n}-{m}", "", sg.urn,
                                             True, "", inputs, {}))
    return rules


def subnet_tiers(plan: Plan) -> dict[str, str]:
    """Subnet id -> ``public`` (default route to an internet gateway), ``private`` (to a NAT
    gateway) or ``isolated`` (no default route)."""
    igws = {r.id for r in plan.of_type(IGW)}
    nats = {r.id for r in plan.of_type(NAT)}
    default_route: dict[str, str] = {}
    for route in plan.of_type(ROUTE):
        inputs = route.plain
        if inputs.get("destinationCidrBlock") != "0.0.0.0/0":
            continue
        if inputs.get("gatewayId") in igws:
            default_route[inputs["routeTableId"]] = "public"
        elif inputs.get("natGatewayId") in nats:
            default_route[inputs["routeTableId"]] = "private"
    tiers = {subnet.id: "isolated" for subnet in plan.of_type(SUBNET)}
    for assoc in plan.of_type(ROUTE_ASSOC):
        inputs = assoc.plain
        if inputs.get("subnetId") in tiers:
            tiers[inputs["subnetId"]] = default_route.get(inputs.get("routeTableId", ""),
                                                          "isolated")
    return tiers


def redrive(queue: PlannedResource) -> dict[str, Any] | None:
    """A queue's parsed redrive policy, or None."""
    raw = queue.plain.get("redrivePolicy")
    if not raw:
        return None
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def queues(plan: Plan) -> tuple[PlannedResource | None, PlannedResource | None]:
    """(change queue, dead-letter queue): the queue with a redrive policy and its target."""
    for queue in plan.of_type(QUEUE):
        policy = redrive(queue)
        if policy:
            return queue, plan.by_reference(policy.get("deadLetterTargetArn"))
    all_queues = plan.of_type(QUEUE)
    return (all_queues[0] if all_queues else None), None


def policy_statements(plan: Plan, role_arn_or_id: str) -> list[dict[str, Any]]:
    """The inline policy statements of an IAM role (by its ARN or id)."""
    role = plan.by_reference(role_arn_or_id)
    if role is None:
        return []
    statements: list[dict[str, Any]] = []
    for policy in plan.of_type(ROLE_POLICY):
        if policy.plain.get("role") in role.references():
            document = json.loads(policy.plain.get("policy") or "{}")
            body = document.get("Statement") or []
            statements.extend(body if isinstance(body, list) else [body])
    return statements


def as_list(value: Any) -> list[Any]:
    """IAM's "a string or a list of strings"."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def actions_on(statements: list[dict[str, Any]], resource_arn: str) -> set[str]:
    """Actions the statements allow on ``resource_arn``."""
    actions: set[str] = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if resource_arn in as_list(statement.get("Resource")) or "*" in as_list(
            statement.get("Resource")
        ):
            actions.update(as_list(statement.get("Action")))
    return actions


def environment(container: dict[str, Any]) -> dict[str, str]:
    """A container's plaintext environment as a dict."""
    return {e["name"]: e.get("value", "") for e in container.get("environment") or []}


def container_secrets(container: dict[str, Any]) -> dict[str, str]:
    """A container's injected secrets: variable name -> ``valueFrom``."""
    return {s["name"]: s.get("valueFrom", "") for s in container.get("secrets") or []}
