"""Autoscaling: the indexer follows the queue backlog, the app follows CPU.

The indexer's metric is *backlog per task*: visible messages in the change queue divided by
the indexer's running tasks (CloudWatch metric math over SQS and Container Insights). Target
tracking keeps it near ``indexerBacklogPerTask``, so the pool grows with a burst of edits and
shrinks when the queue drains. CPU would be the wrong signal: an indexer waiting on an empty
queue idles, and one saturated by a backlog reads 100% whatever the backlog's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

_tt = aws.appautoscaling


@dataclass(frozen=True)
class AutoscalingArgs:
    """Inputs of :class:`Autoscaling`."""

    cluster_name: pulumi.Input[str]
    app_service_name: pulumi.Input[str]
    indexer_service_name: pulumi.Input[str]
    queue_name: pulumi.Input[str]
    app_min_tasks: int
    app_max_tasks: int
    app_cpu_target: int
    indexer_min_tasks: int
    indexer_max_tasks: int
    indexer_backlog_per_task: int
    tags: dict[str, str]


def backlog_per_task_metric(
    queue_name: pulumi.Input[str], cluster_name: pulumi.Input[str], service_name: pulumi.Input[str]
) -> _tt.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs:
    """Metric math: visible messages / running indexer tasks (never divides by zero)."""
    metric = _tt.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricArgs
    stat = _tt.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatArgs
    # The provider's class names are longer than a line.
    spec = _tt.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs  # noqa: E501
    dim = _tt.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs  # noqa: E501
    return _tt.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
        metrics=[
            metric(
                id="backlog",
                label="visible messages in the change queue",
                metric_stat=stat(
                    metric=spec(
                        namespace="AWS/SQS",
                        metric_name="ApproximateNumberOfMessagesVisible",
                        dimensions=[dim(name="QueueName", value=queue_name)],
                    ),
                    stat="Average",
                ),
                return_data=False,
            ),
            metric(
                id="tasks",
                label="running indexer tasks",
                metric_stat=stat(
                    metric=spec(
                        namespace="ECS/ContainerInsights",
                        metric_name="RunningTaskCount",
                        dimensions=[
                            dim(name="ClusterName", value=cluster_name),
                            dim(name="ServiceName", value=service_name),
                        ],
                    ),
                    stat="Average",
                ),
                return_data=False,
            ),
            metric(
                id="backlog_per_task",
                label="backlog per indexer task",
                expression="IF(tasks > 0, backlog / tasks, backlog)",
                return_data=True,
            ),
        ]
    )


class Autoscaling(pulumi.ComponentResource):
    """Scalable targets and target-tracking policies for the app and the indexer."""

    def __init__(
        self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("refarch:infra:Autoscaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def target(role: str, service: pulumi.Input[str], low: int, high: int) -> _tt.Target:
            return _tt.Target(
                f"{name}-{role}",
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=pulumi.Output.format("service/{0}/{1}", args.cluster_name, service),
                min_capacity=low,
                max_capacity=high,
                tags=args.tags,
                opts=child,
            )

        indexer = target("indexer", args.indexer_service_name, args.indexer_min_tasks,
                         args.indexer_max_tasks)
        indexer_policy = _tt.Policy(
            f"{name}-indexer-backlog",
            policy_type="TargetTrackingScaling",
            service_namespace=indexer.service_namespace,
            scalable_dimension=indexer.scalable_dimension,
            resource_id=indexer.resource_id,
            target_tracking_scaling_policy_configuration=_tt.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(args.indexer_backlog_per_task),
                customized_metric_specification=backlog_per_task_metric(
                    args.queue_name, args.cluster_name, args.indexer_service_name
                ),
                scale_out_cooldown=60,
                scale_in_cooldown=300,
            ),
            opts=child,
        )

        app = target("app", args.app_service_name, args.app_min_tasks, args.app_max_tasks)
        app_policy = _tt.Policy(
            f"{name}-app-cpu",
            policy_type="TargetTrackingScaling",
            service_namespace=app.service_namespace,
            scalable_dimension=app.scalable_dimension,
            resource_id=app.resource_id,
            target_tracking_scaling_policy_configuration=_tt.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=float(args.app_cpu_target),
                predefined_metric_specification=_tt.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"
                ),
                scale_out_cooldown=60,
                scale_in_cooldown=300,
            ),
            opts=child,
        )

        self.register_outputs(
            {
                "indexer_policy_arn": indexer_policy.arn,
                "app_policy_arn": app_policy.arn,
                "indexer_bounds": [args.indexer_min_tasks, args.indexer_max_tasks],
                "app_bounds": [args.app_min_tasks, args.app_max_tasks],
            }
        )
