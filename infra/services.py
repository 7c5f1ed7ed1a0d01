"""Services: the ECS cluster, the app behind an ALB, the relay and the indexer on Fargate.

Every task runs the one image with a role as its command (``refarch.cli.container``). Settings
arrive as environment variables; the two secrets (``DATABASE_URL``, ``PINECONE_API_KEY``) are
injected by ECS from Secrets Manager and never appear as plaintext environment. Each service
gets only what it uses: the relay no Pinecone key, and each service only the queue actions it
performs.

Migrations run before any service that uses the database starts: its task carries a
non-essential ``migrate`` container (``refarch db migrate``) and the service's container
starts only once that one exited with success (ECS ``dependsOn`` ``SUCCESS``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from refarch.cli.container import APP_HEALTH_PATH, APP_PORT

#: Service roles, in start-up order.
ROLES = ("app", "relay", "indexer")


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
    database_url_secret_arn: pulumi.Input[str]
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
    certificate_arn: str | None
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
            for role in (*ROLES, "migrate")
        }

        # --- IAM: one execution role (pull image, write logs, read the two secrets) and
        # one task role per service with only the queue actions it performs.
        execution_role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=_assume_role_policy(),
            description="ECS pulls the image, writes logs and reads refarch's secrets",
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-execution-managed",
            role=execution_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-secrets",
            role=execution_role.id,
            policy=_policy(
                [
                    {
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue"],
                        "Resource": [args.database_url_secret_arn, args.pinecone_key_secret_arn],
                    }
                ]
            ),
            opts=child,
        )

        # Every SQS user checks both queues' attributes at start (refarch.queue.sqs.verify).
        inspect = {"Effect": "Allow", "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                   "Resource": [args.queue_arn, args.dlq_arn]}
        consume = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
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
        }
        task_roles: dict[str, aws.iam.Role] = {}
        for role in ROLES:
            task_roles[role] = aws.iam.Role(
                f"{name}-{role}-task",
                assume_role_policy=_assume_role_policy(),
                description=f"refarch {role} task",
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-{role}-task",
                role=task_roles[role].id,
                policy=_policy(task_permissions[role]),
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
        forward = [aws.lb.ListenerDefaultActionArgs(type="forward",
                                                    target_group_arn=target_group.arn)]
        listeners: list[aws.lb.Listener] = []
        if args.certificate_arn:
            listeners.append(aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                certificate_arn=args.certificate_arn,
                ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06",
                default_actions=forward,
                tags=args.tags,
                opts=child,
            ))
            listeners.append(aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        port="443", protocol="HTTPS", status_code="HTTP_301"
                    ),
                )],
                tags=args.tags,
                opts=child,
            ))
            scheme = "https"
        else:
            listeners.append(aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=forward,
                tags=args.tags,
                opts=child,
            ))
            scheme = "http"

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
        uses_database = {"app": True, "relay": True, "indexer": args.indexer_reads_database}
        uses_index = {"app": True, "relay": False, "indexer": True}
        commands = {
            "app": ["app"],
            "relay": ["relay"],
            "indexer": ["indexer", "--workers", str(args.indexer_workers)],
        }
        sizing = {"app": args.app, "relay": args.relay, "indexer": args.indexer}
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

        def container(role: str) -> list[dict[str, Any]]:
            secrets = []
            if uses_database[role]:
                secrets.append({"name": "DATABASE_URL", "valueFrom": args.database_url_secret_arn})
            if uses_index[role]:
                secrets.append({"name": "PINECONE_API_KEY",
                                "valueFrom": args.pinecone_key_secret_arn})
            main: dict[str, Any] = {
                "name": role,
                "image": args.image_ref,
                "essential": True,
                "command": commands[role],
                "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                "secrets": secrets,
                "logConfiguration": logging(role, role),
                # An init process as PID 1 forwards SIGTERM and reaps children.
                "linuxParameters": {"initProcessEnabled": True},
                # Time to finish the batch in hand after SIGTERM (Fargate allows 120 s).
                "stopTimeout": 120 if role == "indexer" else 30,
            }
            if role == "app":
                main["portMappings"] = [{"containerPort": APP_PORT, "protocol": "tcp"}]
            if not uses_database[role]:
                return [main]
            migrate = {
                "name": "migrate",
                "image": args.image_ref,
                "essential": False,
                "command": ["migrate"],
                "environment": [{"name": "REFARCH_LOG_LEVEL", "value": args.log_level}],
                "secrets": [{"name": "DATABASE_URL", "valueFrom": args.database_url_secret_arn}],
                "logConfiguration": logging("migrate", role),
                "linuxParameters": {"initProcessEnabled": True},
            }
            main["dependsOn"] = [{"containerName": "migrate", "condition": "SUCCESS"}]
            return [migrate, main]

        task_definitions: dict[str, aws.ecs.TaskDefinition] = {}
        services: dict[str, aws.ecs.Service] = {}
        for role in ROLES:
            task_definitions[role] = aws.ecs.TaskDefinition(
                f"{name}-{role}",
                family=f"{args.prefix}-{role}",
                requires_compatibilities=["FARGATE"],
                network_mode="awsvpc",
                cpu=str(sizing[role].cpu),
                memory=str(sizing[role].memory_mb),
                execution_role_arn=execution_role.arn,
                task_role_arn=task_roles[role].arn,
                runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                    operating_system_family="LINUX", cpu_architecture=args.cpu_architecture
                ),
                container_definitions=pulumi.Output.json_dumps(container(role)),
                tags=args.tags,
                opts=child,
            )
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
                # The model loads before the health endpoint answers.
                health_check_grace_period_seconds=180 if is_app else None,
                deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                    enable=True, rollback=True
                ),
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                tags=args.tags,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=listeners if is_app else None,
                    # Autoscaling owns the task count once the service exists.
                    ignore_changes=["desiredCount"] if role != "relay" else None,
                ),
            )

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.service_names = {role: s.name for role, s in services.items()}
        self.task_definition_arns = {role: t.arn for role, t in task_definitions.items()}
        self.log_group_names = {role: g.name for role, g in log_groups.items()}
        self.alb_arn_suffix = alb.arn_suffix
        self.target_group_arn_suffix = target_group.arn_suffix
        self.app_url = alb.dns_name.apply(lambda dns: f"{scheme}://{dns}")
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "service_names": self.service_names,
                "task_definition_arns": self.task_definition_arns,
                "log_group_names": self.log_group_names,
                "app_url": self.app_url,
            }
        )
