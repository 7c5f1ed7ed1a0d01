"""Scheduled repair: EventBridge Scheduler runs ``refarch reconcile --repair`` on ECS.

Reconcile compares Postgres with the index and re-enqueues what is missing or stale, the
changes whose message expired in the queue or waits in the dead-letter queue included; run on
a schedule (``reconcileSchedule``, hourly by default) it bounds how long drift can last. The
schedule's role may only run the reconcile task definition (any revision of its family) and
pass that task's two roles to ECS.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.services import _policy


@dataclass(frozen=True)
class RepairArgs:
    """Inputs of :class:`RepairSchedule`."""

    prefix: str
    schedule: str
    cluster_arn: pulumi.Input[str]
    task_definition_arn: pulumi.Input[str]
    task_role_arn: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    tags: dict[str, str]


def _family_arn(task_definition_arn: str) -> str:
    """``...:task-definition/refarch-dev-reconcile:3`` -> any revision of that family."""
    return task_definition_arn.rsplit(":", 1)[0] + ":*"


class RepairSchedule(pulumi.ComponentResource):
    """The schedule and the IAM role it runs the reconcile task with."""

    schedule_name: pulumi.Output[str]

    def __init__(self, name: str, args: RepairArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:infra:RepairSchedule", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-scheduler",
            assume_role_policy=pulumi.Output.json_dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow",
                               "Principal": {"Service": "scheduler.amazonaws.com"},
                               "Action": "sts:AssumeRole"}],
            }),
            description="EventBridge Scheduler: runs the refarch reconcile task",
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-scheduler",
            role=role.id,
            policy=_policy([
                {"Effect": "Allow", "Action": ["ecs:RunTask"],
                 "Resource": [pulumi.Output.from_input(args.task_definition_arn).apply(
                     _family_arn)]},
                {"Effect": "Allow", "Action": ["iam:PassRole"],
                 "Resource": [args.task_role_arn, args.execution_role_arn]},
            ]),
            opts=child,
        )
        schedule = aws.scheduler.Schedule(
            f"{name}-reconcile",
            name=f"{args.prefix}-reconcile",
            description="refarch reconcile --repair: re-enqueue what the index is missing",
            schedule_expression=args.schedule,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(
                mode="FLEXIBLE", maximum_window_in_minutes=5),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=args.cluster_arn,
                role_arn=role.arn,
                ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                    task_definition_arn=args.task_definition_arn,
                    launch_type="FARGATE",
                    task_count=1,
                    network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                        subnets=args.subnet_ids,
                        security_groups=[args.security_group_id],
                        assign_public_ip=False,
                    ),
                ),
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=2, maximum_event_age_in_seconds=3600),
            ),
            opts=child,
        )
        self.schedule_name = schedule.name
        self.register_outputs({"schedule_name": self.schedule_name})
