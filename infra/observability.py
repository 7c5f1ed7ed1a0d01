"""Observability: one CloudWatch dashboard and the alarms that page someone.

The dashboard shows the pipeline end to end: queue depth and age (freshness), the dead-letter
queue, indexer throughput (messages deleted = changes applied) and task count, app latency
percentiles and errors, and the database. Alarms go to the topic of ``queue.py``: oldest
change too old (the index is falling behind), a message of either queue nearing its
retention (SQS would delete it unprocessed), app 5xx, no healthy app task, database CPU and
free storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of :class:`Observability`."""

    prefix: str
    region: str
    queue_name: pulumi.Input[str]
    dlq_name: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_names: dict[str, pulumi.Input[str]]
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    db_identifier: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    queue_age_alarm_seconds: int
    queue_retention_seconds: int
    dlq_retention_seconds: int
    #: Percent of a queue's retention at which its oldest message raises the retention alarm.
    retention_alarm_percent: int
    tags: dict[str, str]


def _widget(title: str, region: str, metrics: list[list[Any]], x: int, y: int,
            **properties: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "period": 60,
            "metrics": metrics,
            **properties,
        },
    }


def dashboard_body(args: ObservabilityArgs) -> pulumi.Output[str]:
    """The dashboard's JSON body (CloudWatch dashboard body structure)."""
    r = args.region
    sqs = "AWS/SQS"
    alb = "AWS/ApplicationELB"
    lb = ["LoadBalancer", args.alb_arn_suffix]
    widgets = [
        _widget("Change queue: depth and age (freshness)", r, [
            [sqs, "ApproximateNumberOfMessagesVisible", "QueueName", args.queue_name,
             {"stat": "Maximum", "label": "waiting"}],
            [sqs, "ApproximateNumberOfMessagesNotVisible", "QueueName", args.queue_name,
             {"stat": "Maximum", "label": "in flight"}],
            [sqs, "ApproximateAgeOfOldestMessage", "QueueName", args.queue_name,
             {"stat": "Maximum", "label": "oldest (s)", "yAxis": "right"}],
        ], 0, 0),
        _widget("Dead-letter queue", r, [
            [sqs, "ApproximateNumberOfMessagesVisible", "QueueName", args.dlq_name,
             {"stat": "Maximum", "label": "failed changes"}],
        ], 12, 0),
        _widget("Indexer throughput", r, [
            [sqs, "NumberOfMessagesDeleted", "QueueName", args.queue_name,
             {"stat": "Sum", "label": "changes applied / min"}],
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", args.cluster_name,
             "ServiceName", args.service_names["indexer"],
             {"stat": "Average", "label": "indexer tasks", "yAxis": "right"}],
        ], 0, 6),
        _widget("App latency", r, [
            [alb, "TargetResponseTime", *lb, {"stat": "p50", "label": "p50"}],
            [alb, "TargetResponseTime", *lb, {"stat": "p95", "label": "p95"}],
            [alb, "TargetResponseTime", *lb, {"stat": "p99", "label": "p99"}],
        ], 12, 6),
        _widget("App requests and errors", r, [
            [alb, "RequestCount", *lb, {"stat": "Sum", "label": "requests"}],
            [alb, "HTTPCode_Target_5XX_Count", *lb, {"stat": "Sum", "label": "app 5xx"}],
            [alb, "HTTPCode_ELB_5XX_Count", *lb, {"stat": "Sum", "label": "ALB 5xx"}],
        ], 0, 12),
        _widget("Database", r, [
            ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", args.db_identifier,
             {"stat": "Average", "label": "CPU %"}],
            ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", args.db_identifier,
             {"stat": "Maximum", "label": "connections", "yAxis": "right"}],
        ], 12, 12),
        _widget("Service CPU", r, [
            ["AWS/ECS", "CPUUtilization", "ClusterName", args.cluster_name, "ServiceName",
             service, {"stat": "Average", "label": role}]
            for role, service in args.service_names.items()
        ], 0, 18),
    ]
    return pulumi.Output.json_dumps({"widgets": widgets})


class Observability(pulumi.ComponentResource):
    """CloudWatch dashboard and alarms."""

    dashboard_name: pulumi.Output[str]
    dashboard_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("refarch:infra:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{args.prefix}-pipeline",
            dashboard_body=dashboard_body(args),
            opts=child,
        )

        def alarm(label: str, description: str, **metric: Any) -> None:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{label}",
                name=f"{args.prefix}-{label}",
                alarm_description=description,
                alarm_actions=[args.alarm_topic_arn],
                ok_actions=[args.alarm_topic_arn],
                tags=args.tags,
                opts=child,
                **metric,
            )

        alarm("queue-age", "The oldest unindexed change is older than "
              f"{args.queue_age_alarm_seconds} s: search results are going stale.",
              namespace="AWS/SQS", metric_name="ApproximateAgeOfOldestMessage",
              dimensions={"QueueName": args.queue_name}, statistic="Maximum", period=60,
              evaluation_periods=5, threshold=args.queue_age_alarm_seconds,
              comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
        # SQS deletes a message unprocessed once it is retentionDays old; a change lost that
        # way is only repaired by reconcile. Alarm well before, on both queues.
        for label, queue, retention in (("queue-retention", args.queue_name,
                                         args.queue_retention_seconds),
                                        ("dlq-retention", args.dlq_name,
                                         args.dlq_retention_seconds)):
            threshold = retention * args.retention_alarm_percent // 100
            alarm(label, f"A message has waited {threshold} s ({args.retention_alarm_percent}% "
                  f"of the {retention} s retention): SQS will delete it unprocessed. Fix the "
                  "indexer or redrive the DLQ; the scheduled reconcile re-enqueues lost changes.",
                  namespace="AWS/SQS", metric_name="ApproximateAgeOfOldestMessage",
                  dimensions={"QueueName": queue}, statistic="Maximum", period=300,
                  evaluation_periods=1, threshold=threshold,
                  comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
        alarm("app-5xx", "The app answers with server errors.",
              namespace="AWS/ApplicationELB", metric_name="HTTPCode_Target_5XX_Count",
              dimensions={"LoadBalancer": args.alb_arn_suffix}, statistic="Sum", period=60,
              evaluation_periods=5, threshold=10, comparison_operator="GreaterThanThreshold",
              treat_missing_data="notBreaching")
        alarm("app-unhealthy", "No healthy app task behind the load balancer.",
              namespace="AWS/ApplicationELB", metric_name="HealthyHostCount",
              dimensions={"LoadBalancer": args.alb_arn_suffix,
                          "TargetGroup": args.target_group_arn_suffix},
              statistic="Minimum", period=60, evaluation_periods=3, threshold=1,
              comparison_operator="LessThanThreshold", treat_missing_data="breaching")
        alarm("db-cpu", "Database CPU above 80% for 10 minutes.",
              namespace="AWS/RDS", metric_name="CPUUtilization",
              dimensions={"DBInstanceIdentifier": args.db_identifier}, statistic="Average",
              period=300, evaluation_periods=2, threshold=80,
              comparison_operator="GreaterThanThreshold", treat_missing_data="missing")
        alarm("db-storage", "Database free storage below 2 GiB.",
              namespace="AWS/RDS", metric_name="FreeStorageSpace",
              dimensions={"DBInstanceIdentifier": args.db_identifier}, statistic="Minimum",
              period=300, evaluation_periods=1, threshold=2 * 1024**3,
              comparison_operator="LessThanThreshold", treat_missing_data="missing")

        self.dashboard_name = dashboard.dashboard_name
        self.dashboard_url = dashboard.dashboard_name.apply(
            lambda dashboard_name: f"https://{args.region}.console.aws.amazon.com/cloudwatch/"
            f"home?region={args.region}#dashboards:name={dashboard_name}"
        )
        self.register_outputs(
            {"dashboard_name": self.dashboard_name, "dashboard_url": self.dashboard_url}
        )
