"""Retention of the local queue and its DLQ, like SQS, on a real PostgreSQL server.

The queue measures age with the database's clock (``now()``), not an injectable one, so time
passes here by moving a message's ``sent_at`` (or a dead letter's ``dead_at``) into the past as
the owner, the same as waiting that long; retentions are the shortest SQS allows (60 s).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from refarch.bootstrap import LOCAL_QUEUE_NAME, ROLE_NAMES, with_user
from refarch.errors import QueueBatchError
from refarch.local.status import collect_status
from refarch.queue.local import Expired, PostgresQueue
from refarch.queue.port import OutgoingMessage, QueueStats
from refarch.settings import Settings
from tests.contract.queue_harness import queue_database

MINUTE = 60


@pytest.fixture(scope="module")
def db(pg_server: Any, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for this module (queues in it have distinct names)."""
    with queue_database(pg_server, pg_template, prefix="retention") as url:
        yield url


@pytest.fixture
def make(db: str) -> Iterator[Callable[..., PostgresQueue]]:
    """Build PostgresQueues with 60 s retentions on fresh queue names; closes them afterwards."""
    opened: list[PostgresQueue] = []

    def build(name: str | None = None, url: str | None = None, **kwargs: Any) -> PostgresQueue:
        kwargs.setdefault("retention_seconds", MINUTE)
        kwargs.setdefault("dlq_retention_seconds", MINUTE)
        q = PostgresQueue(url or db, name=name or f"q{uuid.uuid4().hex[:12]}", **kwargs)
        opened.append(q)
        return q

    yield build
    for q in opened:
        q.close()


def _msg(body: str, group: str = "g") -> OutgoingMessage:
    return OutgoingMessage(body=body, group_id=group, dedup_id=body)


def _age(url: str, queue: str, seconds: float, *, table: str = "queue_messages",
         bodies: tuple[str, ...] | None = None) -> None:
    """Let ``seconds`` pass for the rows of ``queue`` (those with ``bodies``, else all)."""
    column = "sent_at" if table == "queue_messages" else "dead_at"
    where = "queue = %s" + (" AND body = ANY(%s)" if bodies else "")
    params: list[Any] = [seconds, queue] + ([list(bodies)] if bodies else [])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE {table} SET {column} = {column} - make_interval(secs => %s) "
                     f"WHERE {where}", params)


def test_messages_past_their_retention_are_dropped_and_counted(
    make: Callable[..., PostgresQueue], db: str, caplog: pytest.LogCaptureFixture,
) -> None:
    q = make()
    q.send_batch([_msg("old-1", "a"), _msg("old-2", "b"), _msg("fresh", "c")])
    _age(db, q.name, MINUTE - 5, bodies=("old-1", "old-2"))
    assert q.expire() == Expired(0, 0)  # 55 s old: kept
    _age(db, q.name, 6, bodies=("old-1", "old-2"))
    with caplog.at_level(logging.WARNING, logger="refarch.queue.local"):
        assert q.expire() == Expired(messages=2, dead_letters=0)
    (record,) = [r for r in caplog.records if "queue_expired" in r.getMessage()]
    assert f"queue={q.name}" in record.getMessage() and "messages=2" in record.getMessage()
    assert q.stats() == QueueStats(visible=1, in_flight=0, dead=0)
    assert [m.body for m in q.receive(10)] == ["fresh"]


def test_a_message_in_flight_expires_too(make: Callable[..., PostgresQueue], db: str) -> None:
    q = make()
    q.send_batch([_msg("held")])
    (held,) = q.receive(1, visibility_timeout=600)
    _age(db, q.name, MINUTE + 1)
    assert q.expire() == Expired(1, 0)
    with pytest.raises(QueueBatchError, match="not current"):
        q.delete([held.receipt_handle])
    assert q.stats() == QueueStats(0, 0, 0)


def test_a_receive_drops_expired_messages_before_delivering(
    make: Callable[..., PostgresQueue], db: str,
) -> None:
    sender = make()
    sender.send_batch([_msg("expired", "g"), _msg("behind", "g")])
    _age(db, sender.name, MINUTE + 1, bodies=("expired",))
    consumer = make(name=sender.name)  # a consumer's first receive sweeps
    assert [m.body for m in consumer.receive(10)] == ["behind"]
    assert consumer.stats() == QueueStats(visible=0, in_flight=1, dead=0)


def test_dead_letters_expire_from_when_they_were_dead_lettered(
    make: Callable[..., PostgresQueue], db: str,
) -> None:
    # As on an SQS FIFO DLQ: the time a message spent in the queue does not count.
    q = make(retention_seconds=10 * MINUTE, dlq_retention_seconds=2 * MINUTE)
    q.send_batch([_msg("poison")])
    _age(db, q.name, 5 * MINUTE)  # sent 5 minutes ago, longer than the DLQ keeps anything
    (poison,) = q.receive(1)
    q.dead_letter(poison, "boom")
    assert q.expire() == Expired(0, 0)
    assert [d.body for d in q.dead_letters()] == ["poison"]
    _age(db, q.name, 2 * MINUTE + 1, table="queue_dead_letters")
    assert q.expire() == Expired(messages=0, dead_letters=1)
    assert q.dead_letters() == [] and q.stats() == QueueStats(0, 0, 0)


def test_expiry_leaves_other_queues_alone(make: Callable[..., PostgresQueue], db: str) -> None:
    short, other = make(), make(retention_seconds=3600)
    short.send_batch([_msg("s")])
    other.send_batch([_msg("o")])
    _age(db, short.name, MINUTE + 1)
    _age(db, other.name, MINUTE + 1)
    assert other.expire() == Expired(0, 0)
    assert short.expire() == Expired(1, 0)
    assert other.stats().visible == 1


def test_the_indexer_role_sweeps_both_tables_and_the_relay_role_sends(
    make: Callable[..., PostgresQueue], db: str,
) -> None:
    name = f"q{uuid.uuid4().hex[:12]}"
    relay = make(name=name, url=with_user(db, ROLE_NAMES["relay"]))
    indexer = make(name=name, url=with_user(db, ROLE_NAMES["indexer"]))
    relay.send_batch([_msg("dead")])
    (dead,) = indexer.receive(1)
    indexer.dead_letter(dead, "boom")
    relay.send_batch([_msg("old", "h")])
    _age(db, name, MINUTE + 1)
    _age(db, name, MINUTE + 1, table="queue_dead_letters")
    # A new indexer's first receive sweeps both tables (0007 lets it delete dead letters);
    # the one that already swept this minute waits for the next.
    assert [m.body for m in indexer.receive(10)] == ["old"]
    restarted = make(name=name, url=with_user(db, ROLE_NAMES["indexer"]))
    assert restarted.receive(10) == []
    assert restarted.stats() == QueueStats(0, 0, 0)


def test_ages_report_the_oldest_message_and_dead_letter(
    make: Callable[..., PostgresQueue], db: str,
) -> None:
    q = make(retention_seconds=3600, dlq_retention_seconds=3600)
    assert q.ages() == (None, None)
    q.send_batch([_msg("a", "a"), _msg("b", "b")])
    _age(db, q.name, 100, bodies=("a",))
    (b,) = [m for m in q.receive(10) if m.body == "b"]
    q.dead_letter(b, "boom")
    _age(db, q.name, 30, table="queue_dead_letters")
    ages = q.ages()
    assert ages.oldest_message_seconds is not None and 100 <= ages.oldest_message_seconds < 110
    assert ages.oldest_dead_letter_seconds is not None
    assert 30 <= ages.oldest_dead_letter_seconds < 40


def test_refarch_status_warns_before_the_queue_and_dlq_expire(db_url: str, tmp_path: Path) -> None:
    settings = Settings.from_env({
        "DATABASE_URL": db_url, "REFARCH_HOME": str(tmp_path),
        "REFARCH_QUEUE_RETENTION_SECONDS": "600", "REFARCH_DLQ_RETENTION_SECONDS": "1200",
        "REFARCH_INDEX_PORT": "9",  # nothing listens: the index part is reported as an error
    })
    with PostgresQueue(db_url, name=LOCAL_QUEUE_NAME, retention_seconds=600,
                       dlq_retention_seconds=1200) as q:
        q.send_batch([_msg("waiting", "a"), _msg("poison", "b")])
        _age(db_url, q.name, 400)
        assert collect_status(settings).warnings == []  # 400 of 600 s: under 75%
        (poison,) = [m for m in q.receive(10) if m.body == "poison"]
        q.dead_letter(poison, "boom")
        _age(db_url, q.name, 60)  # the waiting message: 460 s of 600
        _age(db_url, q.name, 950, table="queue_dead_letters")  # 950 of 1200 s
    report = collect_status(settings)
    assert report.queue_oldest_seconds is not None and 460 <= report.queue_oldest_seconds < 500
    assert report.dead_letter_oldest_seconds is not None
    assert 950 <= report.dead_letter_oldest_seconds < 990
    queue_warning, dlq_warning = report.warnings
    assert re.match(r"queue: the oldest message is 4\d\d s old and expires in 1?\d\d s;",
                    queue_warning)
    assert "REFARCH_QUEUE_RETENTION_SECONDS=600" in queue_warning
    assert re.match(r"dead-letter queue: the oldest dead letter is 9\d\d s old and expires in "
                    r"2\d\d s;", dlq_warning)
    assert report.to_json()["warnings"] == report.warnings


def test_a_consumer_that_may_not_expire_still_receives(
    make: Callable[..., PostgresQueue], db: str, caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"q{uuid.uuid4().hex[:12]}"
    role = f"refarch_test_{name}"  # roles belong to the whole server
    make(name=name).send_batch([_msg("m")])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        try:
            conn.execute(f"GRANT SELECT, UPDATE ON queue_messages, queue_dead_letters TO {role}")
            reader = make(name=name, url=with_user(db, role))
            with caplog.at_level(logging.WARNING, logger="refarch.queue.local"):
                assert [m.body for m in reader.receive(10)] == ["m"]
            reader.close()
        finally:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
    assert any("queue_expiry_refused" in r.getMessage() and "migration 0007" in r.getMessage()
               for r in caplog.records)
