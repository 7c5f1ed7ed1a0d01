"""What the queue contract suite needs to build each adapter, also in a child process.

A :class:`QueueSpec` is a picklable recipe for one queue (local Postgres, or SQS at an
endpoint), so consumer processes spawned by the concurrency tests build their own client
for the same queue; for the in-memory fake it carries the queue itself (threads share it,
processes cannot). :func:`consume` is the body of such a consumer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from refarch.queue.port import Queue


@dataclass(frozen=True)
class QueueSpec:
    """How to reach one queue: ``kind`` is ``local``, ``sqs`` or ``fake``."""

    kind: str
    max_receives: int
    visibility_timeout: float
    conninfo: str = ""
    name: str = ""
    queue_url: str = ""
    dlq_url: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    #: The in-memory queue itself (kind ``fake``): every build returns this one object.
    shared: Queue | None = None

    def build(self) -> Queue:
        """A new adapter object for this queue (the caller closes it)."""
        if self.kind == "fake":
            assert self.shared is not None
            return self.shared
        if self.kind == "local":
            from refarch.queue.local import PostgresQueue

            return PostgresQueue(
                self.conninfo,
                name=self.name,
                max_receives=self.max_receives,
                visibility_timeout=self.visibility_timeout,
            )
        from refarch.queue.sqs import SqsQueue

        return SqsQueue(
            self.queue_url,
            self.dlq_url,
            client=sqs_client(self.endpoint_url, self.region),
            max_receives=self.max_receives,
            visibility_timeout=self.visibility_timeout,
        )


@contextmanager
def queue_database(pg_server: Any, template: str, prefix: str = "queue") -> Iterator[str]:
    """A fresh copy of the migrated ``template`` database on ``pg_server`` (the queue tables
    come from migration 0003) for a whole test module; yields its URL, drops it afterwards.
    Queues in it are told apart by name, so tests share it without seeing each other."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_server.url(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's SQS in server mode on a free port (real HTTP, as boto3 talks to AWS); yields
    its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def sqs_client(endpoint_url: str | None, region: str) -> Any:
    """A boto3 SQS client: for moto (an endpoint, dummy credentials) or for real AWS."""
    import boto3

    if endpoint_url is None:
        return boto3.client("sqs", region_name=region)
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def consume(
    spec: QueueSpec,
    results: Any,
    seconds: float,
    delete: bool,
    visibility_timeout: float,
    worker: str,
    until_idle: bool = False,
    start: Any = None,
) -> None:
    """Receive for ``seconds``; put one ``(worker, message_id, body, group_id, receive_count,
    position, before, after, deleted_at)`` tuple per delivery on ``results`` (``position``: its
    place in the receive's batch), then ``("done", worker)``. With ``until_idle`` it stops
    early, at the first receive that finds nothing. ``start`` (a barrier) makes all consumers
    begin together.

    ``before``/``after`` bracket the receive call (``time.monotonic()`` is system-wide on
    Linux, so processes can be compared); ``deleted_at`` is when the delete returned (or None).
    """
    queue = spec.build()
    try:
        if start is not None:
            start.wait(timeout=60)  # all consumers begin together
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            before = time.monotonic()
            batch = queue.receive(10, visibility_timeout=visibility_timeout, wait_seconds=1)
            after = time.monotonic()
            if until_idle and not batch:
                break  # a 1 s long poll found nothing deliverable: the queue is drained
            deleted_at = None
            if batch:
                # A consumer spends a moment on its batch, so the others get their turn: an
                # in-memory queue would otherwise let one thread drain it all within one GIL
                # switch interval, and the test would not exercise concurrent consumers.
                time.sleep(0.01)
            if delete and batch:
                queue.delete([m.receipt_handle for m in batch])
                deleted_at = time.monotonic()
            for position, m in enumerate(batch):
                results.put(
                    (worker, m.message_id, m.body, m.group_id, m.receive_count, position,
                     before, after, deleted_at)
                )
    finally:
        queue.close()
        results.put(("done", worker))
