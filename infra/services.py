"""Services: the ECS cluster, the app behind an ALB, the relay and the indexer on Fargate.

Every task runs the one image with a role as its command (``refarch.cli.container``). Settings
arrive as environment variables; secrets are injected by ECS from Secrets Manager and never
appear as plaintext environment. Each service gets only what it uses: its own database role's
URL (``REFARCH_<ROLE>_DATABASE_URL``), the Pinecone key if it talks to the index, and only the
queue actions it performs. Each task has its own *execution* role (the one ECS reads secrets
with) allowed to read exactly those secrets; task roles read no secret at all.

Two tasks run outside the services, from the same image:

* ``migrate`` (``refarch db migrate --role-passwords``), the only holder of the master
  ``DATABASE_URL``: it applies the migrations, then sets each role's password from the role
  URLs. ``refarch deploy up`` runs it after every update (``refarch deploy migrate`` by hand).
  A service's task starts with a non-essential ``wait-for-schema`` container (``refarch db
  wait``, its own role) and its main container starts only once that one succeeded, i.e. once
  the role can log in and no migration is pending.
* ``reconcile`` (``refarch reconcile --repair``), run by the schedule in ``repair.py``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.edge import Edge, EdgeArgs
from refarch.cli.container import APP_HEALTH_PATH, APP_PORT

#: Service roles, in start-up order.
ROLES = ("app", "relay", "indexer")
#: One-off and scheduled tasks (no service): the migration and the repair.
TASKS = ("migrate", "reconcile")
#: How long a service's task waits for the migration task (``refarch db wait --timeout``).
SCHEMA_WAIT_SECONDS = 900


@dataclass(frozen=True)
class ServiceSizing:
    """CPU units, memory and task count of one service."""

    cpu: int
    memory_mb: int
    desired_count: int


@dataclass(frozen=True)
class ServicesArgs:
    """Inputs of :class:`Services`."""

    prefix: str
    region: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: list[pulumi.Input[str]]
    private_subnet_ids: list[pulumi.Input[str]]
    alb_sg_id: pulumi.Input[str]
    app_sg_id: pulumi.Input[str]
    relay_sg_id: pulumi.Input[str]
    indexer_sg_id: pulumi.Input[str]
    image_ref: pulumi.Input[str]
    #: The master ``DATABASE_URL``: the migration and repair tasks only.
    database_url_secret_arn: pulumi.Input[str]
    #: Each service role's own URL secret.
    role_url_secret_arns: dict[str, pulumi.Input[str]]
    pinecone_key_secret_arn: pulumi.Input[str]
    queue_url: pulumi.Input[str]
    queue_arn: pulumi.Input[str]
    dlq_url: pulumi.Input[str]
    dlq_arn: pulumi.Input[str]
    queue_max_receive_count: int
    queue_visibility_timeout_seconds: int
    index_name: pulumi.Input[str]
    app: ServiceSizing
    relay: ServiceSizing
    indexer: ServiceSizing
    indexer_workers: int
    indexer_reads_database: bool
    cpu_architecture: str
    log_retention_days: int
    log_level: str
    operator_exec: bool
    #: TLS and sign-in; the ALB fields are filled in here once the ALB exists.
    edge: EdgeArgs
    tags: dict[str, str]


def _assume_role_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _policy(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


class Services(pulumi.ComponentResource):
    """ECS cluster, ALB, task definitions, services, IAM roles and log groups."""

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    service_names: dict[str, pulumi.Output[str]]
    task_definition_arns: dict[str, pulumi.Output[str]]
    log_group_names: dict[str, pulumi.Output[str]]
    task_role_arns: dict[str, pulumi.Output[str]]
    execution_role_arns: dict[str, pulumi.Output[str]]
    user_pool_id: pulumi.Output[str] | None
    certificate_validation: pulumi.Output[Any] | None
    alb_arn_suffix: pulumi.Output[str]
    target_group_arn_suffix: pulumi.Output[str]
    app_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServicesArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("refarch:infra:Services", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=f"{args.prefix}-cluster",
            # Container Insights publishes RunningTaskCount, which the indexer's
            # backlog-per-task scaling metric divides by.
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=args.tags,
            opts=child,
        )

        log_groups = {
            role: aws.cloudwatch.LogGroup(
                f"{name}-{role}-logs",
                name=f"/{args.prefix}/{role}",
                retention_in_days=args.log_retention_days,
                tags=args.tags,
                opts=child,
            )
            for role in (*ROLES, *TASKS)
        }

        uses_database = {"app": True, "relay": True, "indexer": args.indexer_reads_database}
        uses_index = {"app": True, "relay": False, "indexer": True, "reconcile": True}

        # --- IAM. Execution roles (ECS pulls the image and reads the secrets with them): one
        # per task, each reading only that task's secrets.
        def secrets_of(role: str) -> list[tuple[str, pulumi.Input[str]]]:
            """(variable, secret ARN) injected into ``role``'s containers."""
            found: list[tuple[str, pulumi.Input[str]]] = []
            if role in TASKS:
                found.append(("DATABASE_URL", args.database_url_secret_arn))
            if role == "migrate":
                # The migration sets each role's password from the role's own URL.
                found += [(f"REFARCH_{r.upper()}_DATABASE_URL", arn)
                          for r, arn in args.role_url_secret_arns.items()]
            elif role in ROLES and uses_database[role]:
                found.append((f"REFARCH_{role.upper()}_DATABASE_URL",
                              args.role_url_secret_arns[role]))
            if uses_index.get(role):
                found.append(("PINECONE_API_KEY", args.pinecone_key_secret_arn))
            return found

        execution_roles: dict[str, aws.iam.Role] = {}
        for role in (*ROLES, *TASKS):
            execution_roles[role] = aws.iam.Role(
                f"{name}-{role}-execution",
                assume_role_policy=_assume_role_policy(),
                description=f"ECS agent for refarch {role}: pulls the image, writes logs, "
                            "reads this task's secrets only",
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-{role}-execution-managed",
                role=execution_roles[role].name,
                policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-{role}-execution-secrets",
                role=execution_roles[role].id,
                policy=_policy([{
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": [arn for _, arn in secrets_of(role)],
                }]),
                opts=child,
            )

        # Every SQS user checks both queues' attributes at start (refarch.queue.sqs.verify).
        inspect = {"Effect": "Allow", "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                   "Resource": [args.queue_arn, args.dlq_arn]}
        consume = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
        # ECS Exec (refarch deploy psql): these actions take no resource ARN.
        exec_channel = {"Effect": "Allow", "Action": [
            "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], "Resource": "*"}
        task_permissions: dict[str, list[dict[str, Any]]] = {
            # The status page lists dead letters (a peek) and redrives them to the queue.
            "app": [inspect,
                    {"Effect": "Allow", "Action": consume, "Resource": [args.dlq_arn]},
                    {"Effect": "Allow", "Action": ["sqs:SendMessage"],
                     "Resource": [args.queue_arn]}],
            "relay": [inspect,
                      {"Effect": "Allow", "Action": ["sqs:SendMessage"],
                       "Resource": [args.queue_arn]}],
            # The indexer dead-letters a failing message itself, with its error.
            "indexer": [inspect,
                        {"Effect": "Allow", "Action": consume, "Resource": [args.queue_arn]},
                        {"Effect": "Allow", "Action": ["sqs:SendMessage"],
                         "Resource": [args.dlq_arn]}],
            # The repair re-enqueues what is missing or stale, and peeks at the DLQ (receive,
            # then release) to leave the products whose message waits there alone.
            "reconcile": [inspect,
                          {"Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": [args.queue_arn]},
                          {"Effect": "Allow",
                           "Action": ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"],
                           "Resource": [args.dlq_arn]}],
        }
        task_roles: dict[str, aws.iam.Role] = {}
        for role in (*ROLES, *TASKS):
            task_roles[role] = aws.iam.Role(
                f"{name}-{role}-task",
                assume_role_policy=_assume_role_policy(),
                description=f"refarch {role} task",
                tags=args.tags,
                opts=child,
            )
            statements = list(task_permissions.get(role, []))
            if args.operator_exec and role in ROLES:
                statements.append(exec_channel)
            if statements:
                aws.iam.RolePolicy(
                    f"{name}-{role}-task",
                    role=task_roles[role].id,
                    policy=_policy(statements),
                    opts=child,
                )

        # --- the load balancer in front of the app.
        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=f"{args.prefix}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[args.alb_sg_id],
            drop_invalid_header_fields=True,
            # Streamlit keeps a websocket open per browser session.
            idle_timeout=300,
            tags=args.tags,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-app-tg",
            name=f"{args.prefix}-app",
            port=APP_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=APP_HEALTH_PATH,
                matcher="200",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            # A Streamlit session lives in one task; keep a browser on it across reconnects.
            stickiness=aws.lb.TargetGroupStickinessArgs(
                type="lb_cookie", enabled=True, cookie_duration=86_400
            ),
            tags=args.tags,
            opts=child,
        )
        edge = Edge(f"{name}-edge", dataclasses.replace(
            args.edge, alb_arn=alb.arn, alb_dns_name=alb.dns_name, alb_zone_id=alb.zone_id,
            target_group_arn=target_group.arn), child)

        # --- task definitions and services.
        environment = {
            "AWS_REGION": args.region,
            "REFARCH_QUEUE": "sqs",
            "REFARCH_SQS_QUEUE_URL": args.queue_url,
            "REFARCH_SQS_DLQ_URL": args.dlq_url,
            # Must equal the redrive policy's maxReceiveCount (the SQS adapter verifies it).
            "REFARCH_QUEUE_MAX_RECEIVES": str(args.queue_max_receive_count),
            "REFARCH_QUEUE_VISIBILITY_TIMEOUT": str(args.queue_visibility_timeout_seconds),
            "REFARCH_INDEX": "pinecone",
            "REFARCH_INDEX_NAME": args.index_name,
            "REFARCH_LOG_LEVEL": args.log_level,
        }
        commands = {
            "app": ["app"],
            "relay": ["relay"],
            "indexer": ["indexer", "--workers", str(args.indexer_workers)],
            "migrate": ["migrate", "--role-passwords"],
            "reconcile": ["reconcile", "--repair"],
        }
        sizing = {"app": args.app, "relay": args.relay, "indexer": args.indexer,
                  "migrate": ServiceSizing(256, 512, 0), "reconcile": args.indexer}
        security_groups = {
            "app": args.app_sg_id, "relay": args.relay_sg_id, "indexer": args.indexer_sg_id
        }

        def logging(role: str, stream: str) -> dict[str, Any]:
            return {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_groups[role].name,
                    "awslogs-region": args.region,
                    "awslogs-stream-prefix": stream,
                },
            }

        def injected(role: str) -> list[dict[str, Any]]:
            return [{"name": var, "valueFrom": arn} for var, arn in secrets_of(role)]

        def container(role: str) -> list[dict[str, Any]]:
            main: dict[str, Any] = {
                "name": role,
                "image": args.image_ref,
                "essential": True,
                "command": commands[role],
                "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                "secrets": injected(role),
                "logConfiguration": logging(role, role),
                # An init process as PID 1 forwards SIGTERM and reaps children.
                "linuxParameters": {"initProcessEnabled": True},
                # Time to finish the batch in hand after SIGTERM (Fargate allows 120 s).
                "stopTimeout": 120 if role == "indexer" else 30,
            }
            if role == "migrate":
                main["environment"] = [{"name": "REFARCH_LOG_LEVEL", "value": args.log_level}]
            if role == "app":
                main["portMappings"] = [{"containerPort": APP_PORT, "protocol": "tcp"}]
            if role in TASKS or not uses_database[role]:
                return [main]
            wait = {
                "name": "wait-for-schema",
                "image": args.image_ref,
                "essential": False,
                "command": ["db", "wait", "--role", role, "--timeout", str(SCHEMA_WAIT_SECONDS)],
                "environment": [{"name": "REFARCH_LOG_LEVEL", "value": args.log_level}],
                "secrets": [s for s in injected(role) if s["name"].endswith("_DATABASE_URL")],
                "logConfiguration": logging(role, "wait-for-schema"),
                "linuxParameters": {"initProcessEnabled": True},
            }
            main["dependsOn"] = [{"containerName": "wait-for-schema", "condition": "SUCCESS"}]
            return [wait, main]

        task_definitions: dict[str, aws.ecs.TaskDefinition] = {}
        for role in (*ROLES, *TASKS):
            task_definitions[role] = aws.ecs.TaskDefinition(
                f"{name}-{role}",
                family=f"{args.prefix}-{role}",
                requires_compatibilities=["FARGATE"],
                network_mode="awsvpc",
                cpu=str(sizing[role].cpu),
                memory=str(sizing[role].memory_mb),
                execution_role_arn=execution_roles[role].arn,
                task_role_arn=task_roles[role].arn,
                runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                    operating_system_family="LINUX", cpu_architecture=args.cpu_architecture
                ),
                container_definitions=pulumi.Output.json_dumps(container(role)),
                tags=args.tags,
                opts=child,
            )
        services: dict[str, aws.ecs.Service] = {}
        for role in ROLES:
            is_app = role == "app"
            services[role] = aws.ecs.Service(
                f"{name}-{role}",
                name=f"{args.prefix}-{role}",
                cluster=cluster.arn,
                task_definition=task_definitions[role].arn,
                desired_count=sizing[role].desired_count,
                launch_type="FARGATE",
                network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                    subnets=args.private_subnet_ids,
                    security_groups=[security_groups[role]],
                    assign_public_ip=False,
                ),
                load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=target_group.arn, container_name="app",
                    container_port=APP_PORT,
                )] if is_app else None,
                # The model loads (and the schema may be waited for) before health answers.
                health_check_grace_period_seconds=SCHEMA_WAIT_SECONDS + 180 if is_app else None,
                deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                    enable=True, rollback=True
                ),
                enable_execute_command=args.operator_exec,
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                tags=args.tags,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=edge.listeners if is_app else None,
                    # Autoscaling owns the task count once the service exists.
                    ignore_changes=["desiredCount"] if role != "relay" else None,
                ),
            )

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.service_names = {role: s.name for role, s in services.items()}
        self.task_definition_arns = {role: t.arn for role, t in task_definitions.items()}
        self.task_role_arns = {role: r.arn for role, r in task_roles.items()}
        self.execution_role_arns = {role: r.arn for role, r in execution_roles.items()}
        self.log_group_names = {role: g.name for role, g in log_groups.items()}
        self.alb_arn_suffix = alb.arn_suffix
        self.target_group_arn_suffix = target_group.arn_suffix
        self.app_url = edge.app_url
        self.user_pool_id = edge.user_pool_id
        self.certificate_validation = edge.certificate_validation
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "service_names": self.service_names,
                "task_definition_arns": self.task_definition_arns,
                "log_group_names": self.log_group_names,
                "app_url": self.app_url,
            }
        )
