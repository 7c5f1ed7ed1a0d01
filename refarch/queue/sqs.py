"""The cloud queue: an Amazon SQS FIFO queue and its dead-letter queue, through boto3.

SQS does most of the work natively: message groups (one per product), deduplication ids,
visibility timeouts, receive counts, and the move to the dead-letter queue on the receive that
exceeds the RedrivePolicy's ``maxReceiveCount`` (which must equal ``max_receives``:
:meth:`SqsQueue.verify` checks). The rest is built from plain calls, with these limits:

* **Timeouts are whole seconds** in the SQS API: visibility timeouts and long-poll waits are
  rounded *up* (a message is never visible sooner than asked).
* **dead_letter** is three calls, not one transaction: extend the visibility (which checks the
  receipt handle is current), send a copy to the DLQ with the error as a message attribute,
  delete the original. If the delete fails the message is in both queues; the indexer's writes
  are idempotent, so the copy is harmless.
* **dead_letters** peeks: SQS has no browse call, so it receives from the DLQ with a short
  visibility timeout and makes the messages visible again at once. Consequences: a message's
  receive count also counts these peeks (it is SQS's *Approximate*ReceiveCount); two listings
  at the same moment each see part of the DLQ; and as the DLQ is FIFO, messages queued behind
  another of the same group are not seen until that one leaves the DLQ. A message moved by
  the redrive policy carries no error text; its error reads "received N times without a
  delete" and its ``dead_at`` is unknown (None).
* **redrive** moves messages back by receiving from the DLQ, sending to the source queue (same
  group, a fresh deduplication id derived from the DLQ message id, so a retried redrive is not
  sent twice) and deleting from the DLQ. ``StartMessageMoveTask`` would do the same server
  side, but it is asynchronous, moves everything (no ``limit``) and moto does not implement
  it, so the contract suite could not check it.
* **stats** come from SQS's Approximate* queue attributes, which can lag by about a minute.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from refarch.errors import (
    ConfigError,
    InputError,
    QueueBatchError,
    QueueError,
    StaleReceiptError,
)
from refarch.logs import event
from refarch.queue.port import (
    MAX_BATCH,
    DeadLetter,
    OutgoingMessage,
    QueueStats,
    ReceivedMessage,
)
from refarch.queue.validation import (
    MAX_BODY_BYTES,
    check_limit,
    check_max_messages,
    check_max_receives,
    check_receipt_handles,
    check_send_batch,
    check_timeout,
    check_wait,
    clean_error,
)

log = logging.getLogger(__name__)

#: Message attributes a dead-lettered copy carries.
ERROR_ATTRIBUTE = "refarch-error"
RECEIVE_COUNT_ATTRIBUTE = "refarch-receive-count"
SOURCE_ID_ATTRIBUTE = "refarch-source-message-id"
DEAD_AT_ATTRIBUTE = "refarch-dead-at"
#: Seconds DLQ messages stay hidden while being listed or moved (then shown again).
_DLQ_HOLD_SECONDS = 30
#: Long-poll wait of DLQ reads: long polling asks every SQS server, short polling only some.
_DLQ_WAIT_SECONDS = 1
#: Room left for the message attributes when fitting an error next to a large body.
_ATTRIBUTE_OVERHEAD = 512
#: The retention of the dead-letter queue made by :func:`create_queues` (14 days, the maximum).
DLQ_RETENTION_SECONDS = 1_209_600


def _whole_seconds(seconds: float) -> int:
    return int(math.ceil(seconds))


def _stale_code(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {
        "ReceiptHandleIsInvalid",
        "AWS.SimpleQueueService.MessageNotInflight",
        "MessageNotInflight",
    } or (code == "InvalidParameterValue" and "receipt handle" in message.lower())


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'error')}: {info.get('Message', str(error))}"
    return str(error)


def _chunks(items: Sequence[Any], size: int = MAX_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqsQueue:
    """An SQS FIFO queue with its dead-letter queue (see the module docstring for the limits).

    ``client`` is a boto3 SQS client (default: ``boto3.client("sqs")`` from the environment).
    ``max_receives`` must equal the source queue's RedrivePolicy ``maxReceiveCount``.
    """

    def __init__(
        self,
        queue_url: str,
        dlq_url: str,
        client: Any = None,
        max_receives: int = 5,
        visibility_timeout: float = 30.0,
    ) -> None:
        if not queue_url or not dlq_url:
            raise ConfigError(
                "SqsQueue needs the queue URL and the dead-letter queue URL "
                "(REFARCH_SQS_QUEUE_URL, REFARCH_SQS_DLQ_URL)"
            )
        if queue_url == dlq_url:
            raise ConfigError("the SQS queue and its dead-letter queue must be different queues")
        if client is None:
            import boto3  # imported here: nothing happens at import time

            client = boto3.client("sqs")
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.client = client
        self.max_receives = check_max_receives(max_receives)
        self.visibility_timeout = check_timeout(visibility_timeout)

    def __repr__(self) -> str:
        return f"SqsQueue({self.queue_url!r}, max_receives={self.max_receives})"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self.client, operation)(**kwargs)  # boto3: untyped
            return response
        except ClientError as exc:
            if _stale_code(exc):
                raise StaleReceiptError(
                    f"SQS {operation}: the receipt handle is not current ({_describe(exc)})"
                ) from exc
            raise QueueError(f"SQS {operation} failed: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise QueueError(f"SQS {operation} failed: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: boto3 clients need no closing (kept for the Queue protocol)."""

    def verify(self) -> None:
        """Check both queues exist, are FIFO, and the RedrivePolicy sends to ``dlq_url`` after
        ``max_receives`` receives; raises :class:`~refarch.errors.ConfigError` naming what is
        off."""
        source = self._call(
            "get_queue_attributes",
            QueueUrl=self.queue_url,
            AttributeNames=["FifoQueue", "RedrivePolicy"],
        ).get("Attributes", {})
        dlq = self._call(
            "get_queue_attributes", QueueUrl=self.dlq_url, AttributeNames=["FifoQueue", "QueueArn"]
        ).get("Attributes", {})
        for url, attrs in ((self.queue_url, source), (self.dlq_url, dlq)):
            if attrs.get("FifoQueue") != "true":
                raise ConfigError(f"{url} is not a FIFO queue (its name must end in .fifo)")
        if "RedrivePolicy" not in source:
            raise ConfigError(f"{self.queue_url} has no RedrivePolicy: messages would never "
                              "reach the dead-letter queue")
        policy = json.loads(source["RedrivePolicy"])
        if policy.get("deadLetterTargetArn") != dlq["QueueArn"]:
            raise ConfigError(
                f"{self.queue_url} dead-letters to {policy.get('deadLetterTargetArn')}, "
                f"not to {dlq['QueueArn']} (REFARCH_SQS_DLQ_URL)"
            )
        if int(policy.get("maxReceiveCount", 0)) != self.max_receives:
            raise ConfigError(
                f"{self.queue_url} has maxReceiveCount={policy.get('maxReceiveCount')} but "
                f"REFARCH_QUEUE_MAX_RECEIVES={self.max_receives}; make them equal"
            )

    # -- sending -------------------------------------------------------------------------

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Send 1 to 10 messages (one SendMessageBatch); returns their ids in order.

        Raises :class:`~refarch.errors.QueueBatchError` if SQS refused some entries (the
        others were sent; resending the whole batch is safe thanks to the dedup ids).
        """
        check_send_batch(messages)
        response = self._call(
            "send_message_batch",
            QueueUrl=self.queue_url,
            Entries=[
                {
                    "Id": str(position),
                    "MessageBody": message.body,
                    "MessageGroupId": message.group_id,
                    "MessageDeduplicationId": message.dedup_id,
                }
                for position, message in enumerate(messages)
            ],
        )
        sent = {entry["Id"]: entry["MessageId"] for entry in response.get("Successful", [])}
        failed = {
            entry["Id"]: f"{entry.get('Code')}: {entry.get('Message', '')}"
            for entry in response.get("Failed", [])
        }
        if failed:
            raise QueueBatchError(
                f"SQS refused {len(failed)} of {len(messages)} messages: "
                + "; ".join(f"message {k}: {v}" for k, v in failed.items()),
                failed,
                sorted(sent, key=int),
            )
        event(log, "queue_sent", logging.DEBUG, queue=self.queue_url, count=len(sent))
        return [sent[str(position)] for position in range(len(messages))]

    # -- receiving -----------------------------------------------------------------------

    def receive(
        self,
        max_messages: int = MAX_BATCH,
        *,
        visibility_timeout: float | None = None,
        wait_seconds: float = 0.0,
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages`` (1 to 10), waiting up to ``wait_seconds`` (rounded
        up to whole seconds, at most 20) for one."""
        limit = check_max_messages(max_messages)
        timeout = (
            self.visibility_timeout
            if visibility_timeout is None
            else check_timeout(visibility_timeout)
        )
        wait = check_wait(wait_seconds)
        response = self._call(
            "receive_message",
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=limit,
            VisibilityTimeout=_whole_seconds(timeout),
            WaitTimeSeconds=_whole_seconds(wait),
            MessageSystemAttributeNames=[
                "MessageGroupId",
                "ApproximateReceiveCount",
                "SentTimestamp",
            ],
            # Lets boto3's own retries of a lost response get the same messages back instead
            # of leaving them hidden for a whole visibility timeout.
            ReceiveRequestAttemptId=uuid.uuid4().hex,
        )
        received = [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                group_id=m.get("Attributes", {}).get("MessageGroupId", ""),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                sent_at=_from_millis(m.get("Attributes", {}).get("SentTimestamp")),
            )
            for m in response.get("Messages", [])
        ]
        if received:
            event(log, "queue_received", logging.DEBUG, queue=self.queue_url, count=len(received))
        return received

    # -- acknowledging -------------------------------------------------------------------

    def delete(self, receipt_handles: Sequence[str]) -> None:
        """Delete received messages (DeleteMessageBatch, 10 at a time).

        Every handle SQS accepts is deleted; the refused ones (expired, unknown) are named in
        a :class:`~refarch.errors.QueueBatchError` afterwards.
        """
        handles = check_receipt_handles(receipt_handles)
        failures: dict[str, str] = {}
        succeeded: list[str] = []
        for chunk in _chunks(handles):
            response = self._call(
                "delete_message_batch",
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
            )
            succeeded.extend(chunk[int(e["Id"])] for e in response.get("Successful", []))
            for entry in response.get("Failed", []):
                failures[chunk[int(entry["Id"])]] = (
                    f"{entry.get('Code')}: {entry.get('Message', '')}"
                )
        event(log, "queue_deleted", logging.DEBUG, queue=self.queue_url, count=len(succeeded),
              failed=len(failures))
        if failures:
            raise QueueBatchError(
                f"{len(failures)} of {len(handles)} deletes failed on {self.queue_url}: "
                + "; ".join(list(failures.values())[:3]),
                failures,
                succeeded,
            )

    def change_visibility(self, receipt_handle: str, timeout: float) -> None:
        """Hide a received message for ``timeout`` more seconds (rounded up; 0: visible now).

        Raises :class:`~refarch.errors.StaleReceiptError` if SQS says the handle is not
        current."""
        seconds = check_timeout(timeout, "timeout")
        self._call(
            "change_message_visibility",
            QueueUrl=self.queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=_whole_seconds(seconds),
        )

    def dead_letter(self, message: ReceivedMessage, error: str) -> None:
        """Move a received message to the DLQ now: hold it, send a copy carrying ``error``,
        then delete the original."""
        if not isinstance(message, ReceivedMessage):
            raise InputError(f"dead_letter needs a ReceivedMessage, got {type(message).__name__}")
        text = _fit_error(clean_error(error), message.body)
        # Fails with StaleReceiptError before anything is copied if the handle is not current.
        self.change_visibility(message.receipt_handle, max(self.visibility_timeout, 30.0))
        self._call(
            "send_message",
            QueueUrl=self.dlq_url,
            MessageBody=message.body,
            MessageGroupId=message.group_id,
            # Retrying a dead_letter of the same message within 5 minutes sends no second copy.
            MessageDeduplicationId=f"dl-{message.message_id}"[:128],
            MessageAttributes={
                ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": text},
                RECEIVE_COUNT_ATTRIBUTE: {
                    "DataType": "Number", "StringValue": str(message.receive_count)
                },
                SOURCE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": message.message_id},
                DEAD_AT_ATTRIBUTE: {
                    "DataType": "Number", "StringValue": str(int(time.time() * 1000))
                },
            },
        )
        try:
            self._call("delete_message", QueueUrl=self.queue_url,
                       ReceiptHandle=message.receipt_handle)
        except QueueError as exc:
            raise QueueError(
                f"message {message.message_id} was copied to the dead-letter queue but could "
                f"not be deleted from {self.queue_url} ({exc}); it will be delivered again"
            ) from exc
        event(log, "queue_dead_lettered", queue=self.queue_url, count=1, reason="explicit",
              message_id=message.message_id)

    # -- the dead-letter queue and counts ------------------------------------------------

    def _approximate(self, url: str) -> tuple[int, int]:
        attrs = self._call(
            "get_queue_attributes",
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        ).get("Attributes", {})
        return (
            int(attrs.get("ApproximateNumberOfMessages", 0)),
            int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def _hold_dlq_messages(self, limit: int) -> Iterator[list[dict[str, Any]]]:
        """Receive DLQ messages in batches (hiding them for a short while) until ``limit`` are
        taken or none come back. Stops early once the DLQ's approximate count is reached, to
        save the final empty long poll."""
        expected, _ = self._approximate(self.dlq_url)
        taken = 0
        while taken < limit:
            response = self._call(
                "receive_message",
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=min(MAX_BATCH, limit - taken),
                VisibilityTimeout=_DLQ_HOLD_SECONDS,
                WaitTimeSeconds=_DLQ_WAIT_SECONDS,
                MessageSystemAttributeNames=[
                    "MessageGroupId", "ApproximateReceiveCount", "SentTimestamp"
                ],
                MessageAttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            if not batch:
                return
            taken += len(batch)
            yield batch
            if taken >= expected > 0 and self._approximate(self.dlq_url)[0] == 0:
                return

    def _release(self, messages: Sequence[dict[str, Any]]) -> None:
        """Make held DLQ messages visible again (best effort: they reappear anyway)."""
        for chunk in _chunks(list(messages)):
            try:
                self.client.change_message_visibility_batch(
                    QueueUrl=self.dlq_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(chunk)
                    ],
                )
            except (ClientError, BotoCoreError) as exc:
                event(log, "queue_dlq_release_failed", logging.WARNING, error=_describe(exc))

    def _as_dead_letter(self, message: dict[str, Any]) -> DeadLetter:
        attrs = message.get("Attributes", {})
        extra = {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}
        if ERROR_ATTRIBUTE in extra:
            return DeadLetter(
                message_id=extra.get(SOURCE_ID_ATTRIBUTE) or message["MessageId"],
                body=message["Body"],
                group_id=attrs.get("MessageGroupId", ""),
                receive_count=int(extra.get(RECEIVE_COUNT_ATTRIBUTE) or 0),
                error=extra[ERROR_ATTRIBUTE],
                dead_at=_from_millis(extra.get(DEAD_AT_ATTRIBUTE)),
            )
        # Moved by the redrive policy: SQS keeps the id and counts on (this peek included).
        return DeadLetter(
            message_id=message["MessageId"],
            body=message["Body"],
            group_id=attrs.get("MessageGroupId", ""),
            receive_count=int(attrs.get("ApproximateReceiveCount", 0)),
            error=f"received {self.max_receives} times without a delete "
            f"(max_receives={self.max_receives})",
            dead_at=None,
        )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Peek at up to ``limit`` DLQ messages (see the module docstring for the limits)."""
        count = check_limit(limit)
        held: list[dict[str, Any]] = []
        try:
            for batch in self._hold_dlq_messages(count):
                held.extend(batch)
        finally:
            self._release(held)
        return [self._as_dead_letter(m) for m in held]

    def redrive(self, limit: int | None = None) -> int:
        """Move DLQ messages back to the source queue (all, or at most ``limit``); returns how
        many moved. Raises :class:`~refarch.errors.QueueBatchError` if some could not be sent
        (those stay in the DLQ)."""
        count = check_limit(limit, optional=True)
        moved = 0
        failures: dict[str, str] = {}
        for batch in self._hold_dlq_messages(count if count is not None else sys.maxsize):
            response = self._call(
                "send_message_batch",
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": m["Body"],
                        "MessageGroupId": m.get("Attributes", {}).get("MessageGroupId", "redrive"),
                        "MessageDeduplicationId": f"rd-{m['MessageId']}"[:128],
                    }
                    for i, m in enumerate(batch)
                ],
            )
            sent = [batch[int(e["Id"])] for e in response.get("Successful", [])]
            refused = [batch[int(e["Id"])] for e in response.get("Failed", [])]
            for entry in response.get("Failed", []):
                failures[batch[int(entry["Id"])]["MessageId"]] = (
                    f"{entry.get('Code')}: {entry.get('Message', '')}"
                )
            if sent:
                self._call(
                    "delete_message_batch",
                    QueueUrl=self.dlq_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(sent)
                    ],
                )
            self._release(refused)
            moved += len(sent)
        event(log, "queue_redriven", queue=self.queue_url, count=moved, failed=len(failures))
        if failures:
            raise QueueBatchError(
                f"redrive moved {moved} messages but SQS refused {len(failures)}: "
                + "; ".join(list(failures.values())[:3]),
                failures,
                [str(moved)],
            )
        return moved

    def stats(self) -> QueueStats:
        """Visible, in-flight and dead-lettered counts (SQS's approximate numbers)."""
        visible, in_flight = self._approximate(self.queue_url)
        dead_visible, dead_hidden = self._approximate(self.dlq_url)
        return QueueStats(visible=visible, in_flight=in_flight, dead=dead_visible + dead_hidden)


def _from_millis(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _fit_error(error: str, body: str) -> str:
    """Cut ``error`` so that the body plus its attributes stay within SQS's 256 KiB."""
    budget = MAX_BODY_BYTES - len(body.encode("utf-8")) - _ATTRIBUTE_OVERHEAD
    encoded = error.encode("utf-8")
    if len(encoded) <= budget:
        return error
    if budget <= 20:
        return "(error omitted: the message is too large to carry it)"
    return encoded[: budget - 16].decode("utf-8", "ignore") + " …[truncated]"


def create_queues(
    client: Any, name: str, *, max_receives: int = 5, visibility_timeout: int = 60
) -> tuple[str, str]:
    """Create the FIFO queue ``{name}.fifo`` and its DLQ ``{name}-dlq.fifo`` with a
    RedrivePolicy after ``max_receives`` receives; returns ``(queue_url, dlq_url)``.

    For tests and local experiments; in the cloud Pulumi creates the same pair.
    """
    check_max_receives(max_receives)
    try:
        dlq_url = client.create_queue(
            QueueName=f"{name}-dlq.fifo",
            Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
        )["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = client.create_queue(
            QueueName=f"{name}.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": str(int(visibility_timeout)),
                "RedrivePolicy": json.dumps(
                    # A string, as in AWS's own examples (SQS returns it as a number).
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
                ),
            },
        )["QueueUrl"]
    except (ClientError, BotoCoreError) as exc:
        raise QueueError(f"cannot create the SQS queues {name!r}: {_describe(exc)}") from exc
    return queue_url, dlq_url
