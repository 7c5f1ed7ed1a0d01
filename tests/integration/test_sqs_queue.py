"""What only the SQS adapter has: queue creation, configuration checks, wiring, size fitting.

Runs against moto's server mode over real HTTP (no AWS account needed). The shared semantics
are in ``tests/contract/test_queue_contract.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from refarch.bootstrap import build_queue
from refarch.errors import ConfigError, QueueError
from refarch.queue.port import OutgoingMessage
from refarch.queue.sqs import ERROR_ATTRIBUTE, SqsQueue, create_queues
from refarch.queue.validation import MAX_BODY_BYTES
from refarch.settings import Settings
from tests.contract.queue_harness import moto_server, sqs_client


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(endpoint: str) -> Any:
    return sqs_client(endpoint, "us-east-1")


def fresh_name() -> str:
    return f"refarch-test-{uuid.uuid4().hex[:12]}"


def test_create_queues_makes_a_fifo_pair_with_a_redrive_policy(client: Any) -> None:
    name = fresh_name()
    queue_url, dlq_url = create_queues(client, name, max_receives=4, visibility_timeout=45)
    assert queue_url.endswith(f"/{name}.fifo") and dlq_url.endswith(f"/{name}-dlq.fifo")
    attrs = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true" and dlq["FifoQueue"] == "true"
    assert attrs["VisibilityTimeout"] == "45"
    policy = json.loads(attrs["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(policy["maxReceiveCount"]) == 4
    assert dlq["MessageRetentionPeriod"] == "1209600"
    SqsQueue(queue_url, dlq_url, client=client, max_receives=4).verify()


def test_verify_names_a_max_receives_mismatch(client: Any) -> None:
    queue_url, dlq_url = create_queues(client, fresh_name(), max_receives=3)
    with pytest.raises(ConfigError, match="maxReceiveCount=3 but REFARCH_QUEUE_MAX_RECEIVES=5"):
        SqsQueue(queue_url, dlq_url, client=client, max_receives=5).verify()


def test_verify_names_the_wrong_dlq(client: Any) -> None:
    queue_url, _ = create_queues(client, fresh_name())
    _, other_dlq = create_queues(client, fresh_name())
    with pytest.raises(ConfigError, match="dead-letters to .* not to"):
        SqsQueue(queue_url, other_dlq, client=client).verify()


def test_verify_refuses_standard_queues_and_a_missing_policy(client: Any) -> None:
    standard = client.create_queue(QueueName=fresh_name())["QueueUrl"]
    _, dlq_url = create_queues(client, fresh_name())
    with pytest.raises(ConfigError, match="is not a FIFO queue"):
        SqsQueue(standard, dlq_url, client=client).verify()
    bare = client.create_queue(
        QueueName=f"{fresh_name()}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    with pytest.raises(ConfigError, match="has no RedrivePolicy"):
        SqsQueue(bare, dlq_url, client=client).verify()


def test_a_missing_queue_is_a_queue_error(client: Any, endpoint: str) -> None:
    q = SqsQueue(f"{endpoint}/123456789012/nope.fifo", f"{endpoint}/123456789012/nope-dlq.fifo",
                 client=client)
    with pytest.raises(QueueError, match="SQS get_queue_attributes failed"):
        q.stats()


def test_the_constructor_needs_two_different_urls(client: Any) -> None:
    with pytest.raises(ConfigError, match="REFARCH_SQS_DLQ_URL"):
        SqsQueue("https://sqs/q.fifo", "", client=client)
    with pytest.raises(ConfigError, match="must be different queues"):
        SqsQueue("https://sqs/q.fifo", "https://sqs/q.fifo", client=client)


def test_make_queue_builds_a_verified_sqs_queue_from_settings(
    client: Any, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url, dlq_url = create_queues(client, fresh_name(), max_receives=2)
    # boto3 reads the endpoint and credentials from the environment, as on ECS.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings.from_env(
        {
            "REFARCH_QUEUE": "sqs",
            "REFARCH_SQS_QUEUE_URL": queue_url,
            "REFARCH_SQS_DLQ_URL": dlq_url,
            "REFARCH_QUEUE_MAX_RECEIVES": "2",
            "REFARCH_QUEUE_VISIBILITY_TIMEOUT": "90",
        }
    )
    q = build_queue(settings)
    assert isinstance(q, SqsQueue)
    assert (q.max_receives, q.visibility_timeout) == (2, 90.0)
    q.send_batch([OutgoingMessage("{}", "p1", "d1")])
    assert q.stats().visible == 1
    with pytest.raises(ConfigError, match="maxReceiveCount=2 but REFARCH_QUEUE_MAX_RECEIVES=5"):
        build_queue(settings.with_(queue_max_receives=5))


def test_an_error_next_to_a_near_maximum_body_is_cut_to_fit(client: Any) -> None:
    queue_url, dlq_url = create_queues(client, fresh_name())
    q = SqsQueue(queue_url, dlq_url, client=client)
    body = "x" * (MAX_BODY_BYTES - 1000)
    q.send_batch([OutgoingMessage(body, "g", "big")])
    (m,) = q.receive(1)
    q.dead_letter(m, "E" * 4000)  # 4000 + 262144 - 1000 bytes would not fit
    (dead,) = q.dead_letters()
    assert dead.body == body
    assert dead.error is not None and dead.error.startswith("EEE")
    assert dead.error.endswith("[truncated]") and len(dead.error.encode()) < 1000
    # The copy in the DLQ carries the error as a message attribute.
    raw = client.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"],
                                 VisibilityTimeout=0)["Messages"][0]
    assert raw["MessageAttributes"][ERROR_ATTRIBUTE]["StringValue"] == dead.error


def test_timeouts_are_rounded_up_to_whole_seconds(client: Any) -> None:
    queue_url, dlq_url = create_queues(client, fresh_name())
    q = SqsQueue(queue_url, dlq_url, client=client)
    q.send_batch([OutgoingMessage("m", "g", "d")])
    (m,) = q.receive(1, visibility_timeout=0.2)  # rounded up to 1 s, never down to 0
    assert q.receive(1) == []
