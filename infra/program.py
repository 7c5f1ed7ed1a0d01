"""The whole stack as one function, run by ``pulumi up`` (via ``__main__.py``) and inline by the
Automation API driver (``refarch.deploy``), and under mocks by the tests and the offline plan.

:func:`build_stack` reads no configuration itself: it is given a :class:`StackConfig` and the
Pinecone API key (a secret) and wires the components together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.autoscaling import Autoscaling, AutoscalingArgs
from infra.config import OIDC_FIELDS, StackConfig
from infra.database import Database, DatabaseArgs
from infra.edge import EdgeArgs
from infra.image import ImageArgs, ServiceImage
from infra.network import Network, NetworkArgs
from infra.observability import Observability, ObservabilityArgs
from infra.queue import DAY, ChangeQueue, QueueArgs
from infra.repair import RepairArgs, RepairSchedule
from infra.security import SecurityArgs, SecurityGroups
from infra.services import Services, ServicesArgs, ServiceSizing
from infra.vector_index import VectorIndex, VectorIndexArgs
from refarch.cli.container import APP_PORT

#: Stack outputs, in the order ``refarch deploy outputs`` prints them.
OUTPUT_NAMES = (
    "app_url",
    "database_endpoint",
    "queue_url",
    "dlq_url",
    "index_name",
    "index_host",
    "dashboard_url",
    "image_ref",
    "cluster_name",
    "task_definition_arns",
    "private_subnet_ids",
    "service_security_group_ids",
    "tasks_security_group_id",
    "service_names",
    "user_pool_id",
    "certificate_validation",
    "reconcile_schedule",
)


@dataclass(frozen=True)
class StackOutputs:
    """What :func:`build_stack` returns (and exports): the stack's public endpoints."""

    app_url: pulumi.Output[str]
    database_endpoint: pulumi.Output[str]
    queue_url: pulumi.Output[str]
    dlq_url: pulumi.Output[str]
    index_name: pulumi.Output[str]
    index_host: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]
    image_ref: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    task_definition_arns: dict[str, pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    service_security_group_ids: dict[str, pulumi.Output[str]]
    tasks_security_group_id: pulumi.Output[str]
    service_names: dict[str, pulumi.Output[str]]
    #: The Cognito user pool ``refarch deploy add-user`` adds to (None without Cognito).
    user_pool_id: pulumi.Output[str] | None
    #: The DNS record that validates the requested certificate (None when not requested).
    certificate_validation: pulumi.Output[Any] | None
    reconcile_schedule: pulumi.Output[str]


def build_stack(config: StackConfig, pinecone_api_key: pulumi.Input[str],
                oidc_client_secret: pulumi.Input[str] | None = None) -> StackOutputs:
    """Declare every resource of the stack and export its outputs.

    ``oidc_client_secret`` is needed with ``authProvider=oidc`` only. Must run inside a Pulumi
    program (CLI, Automation API or ``pulumi.runtime.set_mocks``).
    """
    tags = config.tags
    prefix = config.prefix
    aws_provider = aws.Provider("aws", region=config.aws_region)
    opts = pulumi.ResourceOptions(providers={"aws": aws_provider})

    network = Network(
        "network",
        NetworkArgs(prefix, config.aws_region, config.vpc_cidr, config.az_count,
                    config.nat_gateway_count, tags),
        opts,
    )
    security = SecurityGroups(
        "security",
        SecurityArgs(prefix, network.vpc_id, APP_PORT, config.alb_ingress_cidrs,
                     https=config.tls,
                     indexer_reads_database=config.indexer_reads_database, tags=tags,
                     sign_in=config.sign_in),
        opts,
    )
    database = Database(
        "database",
        DatabaseArgs(prefix, network.private_subnet_ids, security.database_sg_id,
                     config.db_instance_class, config.db_engine_version,
                     config.db_allocated_storage_gb, config.db_max_allocated_storage_gb,
                     config.db_backup_retention_days, config.db_multi_az, config.protect_data,
                     config.recovery_window_days, tags,
                     roles=("app", "relay", "indexer") if config.indexer_reads_database
                     else ("app", "relay")),
        opts,
    )
    queue = ChangeQueue(
        "queue",
        QueueArgs(prefix, config.queue_visibility_timeout_seconds, config.queue_max_receive_count,
                  config.queue_retention_days, config.dlq_retention_days, config.alarm_email,
                  tags),
        opts,
    )
    index = VectorIndex(
        "index",
        VectorIndexArgs(prefix, config.index_name, config.index_cloud,
                        config.resolved_index_region, pinecone_api_key, config.protect_data,
                        config.recovery_window_days, tags),
        opts,
    )
    platform = "linux/arm64" if config.cpu_architecture == "ARM64" else "linux/amd64"
    image = ServiceImage(
        "image", ImageArgs(prefix, config.image_uri, platform, config.protect_data, tags), opts
    )
    services = Services(
        "services",
        ServicesArgs(
            prefix=prefix,
            region=config.aws_region,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            alb_sg_id=security.alb_sg_id,
            app_sg_id=security.app_sg_id,
            relay_sg_id=security.relay_sg_id,
            indexer_sg_id=security.indexer_sg_id,
            image_ref=image.image_ref,
            database_url_secret_arn=database.url_secret_arn,
            role_url_secret_arns=database.role_url_secret_arns,
            pinecone_key_secret_arn=index.api_key_secret_arn,
            queue_url=queue.queue_url,
            queue_arn=queue.queue_arn,
            dlq_url=queue.dlq_url,
            dlq_arn=queue.dlq_arn,
            queue_max_receive_count=config.queue_max_receive_count,
            queue_visibility_timeout_seconds=config.queue_visibility_timeout_seconds,
            index_name=index.name,
            app=ServiceSizing(config.app_cpu, config.app_memory_mb, config.app_min_tasks),
            relay=ServiceSizing(config.relay_cpu, config.relay_memory_mb, config.relay_tasks),
            indexer=ServiceSizing(config.indexer_cpu, config.indexer_memory_mb,
                                  config.indexer_min_tasks),
            indexer_workers=config.indexer_workers,
            indexer_reads_database=config.indexer_reads_database,
            cpu_architecture=config.cpu_architecture,
            log_retention_days=config.log_retention_days,
            log_level=config.log_level.upper(),
            operator_exec=config.operator_exec,
            edge=EdgeArgs(
                prefix=prefix, alb_arn="", alb_dns_name="", alb_zone_id="", target_group_arn="",
                tls=config.tls, sign_in=config.sign_in, domain_name=config.app_domain,
                hosted_zone_id=config.hosted_zone_id, certificate_arn=config.certificate_arn,
                auth_provider=config.auth_provider,
                session_timeout_minutes=config.session_timeout_minutes,
                protect_data=config.protect_data, tags=tags,
                oidc={key: getattr(config, key) for key in OIDC_FIELDS},
                oidc_client_secret=oidc_client_secret,
            ),
            tags=tags,
        ),
        # The secret versions must exist before a task tries to read them.
        pulumi.ResourceOptions(providers={"aws": aws_provider}, depends_on=[database, index]),
    )
    Autoscaling(
        "autoscaling",
        AutoscalingArgs(
            cluster_name=services.cluster_name,
            app_service_name=services.service_names["app"],
            indexer_service_name=services.service_names["indexer"],
            queue_name=queue.queue_name,
            app_min_tasks=config.app_min_tasks,
            app_max_tasks=config.app_max_tasks,
            app_cpu_target=config.app_cpu_target,
            indexer_min_tasks=config.indexer_min_tasks,
            indexer_max_tasks=config.indexer_max_tasks,
            indexer_backlog_per_task=config.indexer_backlog_per_task,
            tags=tags,
        ),
        opts,
    )
    observability = Observability(
        "observability",
        ObservabilityArgs(
            prefix=prefix,
            region=config.aws_region,
            queue_name=queue.queue_name,
            dlq_name=queue.dlq_name,
            cluster_name=services.cluster_name,
            service_names=services.service_names,
            alb_arn_suffix=services.alb_arn_suffix,
            target_group_arn_suffix=services.target_group_arn_suffix,
            db_identifier=database.identifier,
            alarm_topic_arn=queue.alarm_topic_arn,
            queue_age_alarm_seconds=config.queue_age_alarm_seconds,
            queue_retention_seconds=config.queue_retention_days * DAY,
            dlq_retention_seconds=config.dlq_retention_days * DAY,
            retention_alarm_percent=config.queue_retention_alarm_percent,
            tags=tags,
        ),
        opts,
    )

    repair = RepairSchedule(
        "repair",
        RepairArgs(
            prefix=prefix,
            schedule=config.reconcile_schedule,
            cluster_arn=services.cluster_arn,
            task_definition_arn=services.task_definition_arns["reconcile"],
            task_role_arn=services.task_role_arns["reconcile"],
            execution_role_arn=services.execution_role_arns["reconcile"],
            subnet_ids=network.private_subnet_ids,
            security_group_id=security.tasks_sg_id,
            tags=tags,
        ),
        opts,
    )

    outputs = StackOutputs(
        app_url=services.app_url,
        database_endpoint=database.endpoint,
        queue_url=queue.queue_url,
        dlq_url=queue.dlq_url,
        index_name=index.name,
        index_host=index.host,
        dashboard_url=observability.dashboard_url,
        image_ref=image.image_ref,
        cluster_name=services.cluster_name,
        task_definition_arns=services.task_definition_arns,
        private_subnet_ids=network.private_subnet_ids,
        service_security_group_ids={
            "app": security.app_sg_id,
            "relay": security.relay_sg_id,
            "indexer": security.indexer_sg_id,
        },
        tasks_security_group_id=security.tasks_sg_id,
        service_names=services.service_names,
        user_pool_id=services.user_pool_id,
        certificate_validation=services.certificate_validation,
        reconcile_schedule=repair.schedule_name,
    )
    for output_name in OUTPUT_NAMES:
        value = getattr(outputs, output_name)
        if value is not None:
            pulumi.export(output_name, value)
    return outputs
