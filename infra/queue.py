"""Queue: the SQS FIFO change queue, its dead-letter queue, and the alarm topic.

A change that fails ``maxReceiveCount`` times moves to the DLQ (redrive policy), where an alarm
on its depth notifies the SNS topic; the DLQ allows redrive back to the main queue only. Both
queues are encrypted with SQS-managed keys. The topic also carries the other alarms
(``observability.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

DAY = 86_400


@dataclass(frozen=True)
class QueueArgs:
    """Inputs of :class:`ChangeQueue`."""

    prefix: str
    visibility_timeout_seconds: int
    max_receive_count: int
    retention_days: int
    dlq_retention_days: int
    alarm_email: str | None
    tags: dict[str, str]


class ChangeQueue(pulumi.ComponentResource):
    """SQS FIFO queue + DLQ with redrive, SSE, a DLQ-depth alarm and the alarm topic."""

    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    dlq_url: pulumi.Output[str]
    dlq_arn: pulumi.Output[str]
    dlq_name: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: QueueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:infra:ChangeQueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=f"{args.prefix}-changes-dlq.fifo",
            fifo_queue=True,
            content_based_deduplication=True,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=args.dlq_retention_days * DAY,
            tags=args.tags,
            opts=child,
        )
        queue = aws.sqs.Queue(
            f"{name}-changes",
            name=f"{args.prefix}-changes.fifo",
            fifo_queue=True,
            # Producers send deduplication ids; content-based dedup is the fallback.
            content_based_deduplication=True,
            # One message group per product: high-throughput FIFO mode scales per group.
            deduplication_scope="messageGroup",
            fifo_throughput_limit="perMessageGroupId",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=args.retention_days * DAY,
            receive_wait_time_seconds=20,
            redrive_policy=dlq.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": args.max_receive_count}
                )
            ),
            tags=args.tags,
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=dlq.url,
            redrive_allow_policy=queue.arn.apply(
                lambda arn: json.dumps(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [arn]}
                )
            ),
            opts=child,
        )

        # Not KMS-encrypted on purpose: CloudWatch cannot publish to a topic encrypted with
        # the AWS-managed aws/sns key, and alarm notifications carry no data.
        topic = aws.sns.Topic(f"{name}-alarms", name=f"{args.prefix}-alarms", tags=args.tags,
                              opts=child)
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=child,
            )
        aws.cloudwatch.MetricAlarm(
            f"{name}-dlq-depth",
            name=f"{args.prefix}-dlq-not-empty",
            alarm_description="Changes failed repeatedly and are in the dead-letter queue; "
            "inspect them and redrive once fixed.",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": dlq.name},
            statistic="Maximum",
            period=60,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[topic.arn],
            ok_actions=[topic.arn],
            tags=args.tags,
            opts=child,
        )

        self.queue_url = queue.url
        self.queue_arn = queue.arn
        self.queue_name = queue.name
        self.dlq_url = dlq.url
        self.dlq_arn = dlq.arn
        self.dlq_name = dlq.name
        self.alarm_topic_arn = topic.arn
        self.register_outputs(
            {
                "queue_url": self.queue_url,
                "queue_arn": self.queue_arn,
                "dlq_url": self.dlq_url,
                "dlq_arn": self.dlq_arn,
                "alarm_topic_arn": self.alarm_topic_arn,
            }
        )
