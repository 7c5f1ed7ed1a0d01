"""What only the local queue has: its tables, NOTIFY wake-ups, roles, and failure messages.

The shared semantics are in ``tests/contract/test_queue_contract.py``; these tests use a real
PostgreSQL server too.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from refarch.errors import ConfigError, InputError, QueueError
from refarch.queue.local import PostgresQueue
from refarch.queue.port import OutgoingMessage, QueueStats
from tests.contract.queue_harness import queue_database


@pytest.fixture(scope="module")
def db(pg_server: Any, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for this module (queues in it have distinct names)."""
    with queue_database(pg_server, pg_template, prefix="localq") as url:
        yield url


@pytest.fixture
def make(db: str) -> Iterator:
    """Build PostgresQueues on fresh queue names; closes them afterwards."""
    opened: list[PostgresQueue] = []

    def build(name: str | None = None, url: str | None = None, **kwargs) -> PostgresQueue:
        q = PostgresQueue(url or db, name=name or f"q{uuid.uuid4().hex[:12]}", **kwargs)
        opened.append(q)
        return q

    yield build
    for q in opened:
        q.close()


def msg(body: str, group: str = "g", dedup: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(body=body, group_id=group, dedup_id=dedup or body)


def as_user(url: str, user: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(url), "user": user})


def test_the_dlq_records_the_exact_receive_count_and_why(make) -> None:
    q = make(max_receives=3)
    q.send_batch([msg("poison")])
    counts = []
    for _ in range(5):
        for m in q.receive(10, visibility_timeout=0):
            counts.append(m.receive_count)
    assert counts == [1, 2, 3]
    (dead,) = q.dead_letters()
    assert dead.receive_count == 3
    assert dead.error == "received 3 times without a delete (max_receives=3)"


def test_a_send_wakes_a_long_poll_through_notify(make) -> None:
    # poll_interval is far above the wait: only the NOTIFY can end the wait early.
    consumer = make(name="notify-test", poll_interval=30)
    producer = make(name="notify-test")
    timer = threading.Timer(0.3, lambda: producer.send_batch([msg("wake")]))
    start = time.monotonic()
    timer.start()
    try:
        got = consumer.receive(10, wait_seconds=10)
    finally:
        timer.join()
    assert [m.body for m in got] == ["wake"]
    assert time.monotonic() - start < 5


def test_a_long_poll_wakes_when_a_hidden_message_becomes_visible(make) -> None:
    q = make(poll_interval=30)
    q.send_batch([msg("hidden")])
    (first,) = q.receive(1, visibility_timeout=0.4)
    start = time.monotonic()
    again = q.receive(10, wait_seconds=10)
    waited = time.monotonic() - start
    assert [m.body for m in again] == ["hidden"] and again[0].receive_count == 2
    assert 0.2 < waited < 5


def test_a_send_to_another_queue_does_not_deliver_here(make) -> None:
    mine, other = make(), make()
    other.send_batch([msg("not-yours")])
    assert mine.receive(10, wait_seconds=0.5) == []
    assert mine.stats() == QueueStats(0, 0, 0)
    assert [m.body for m in other.receive(10)] == ["not-yours"]


def test_a_dedup_id_is_accepted_again_once_its_window_expired(make, db: str) -> None:
    q = make()
    (first_id,) = q.send_batch([msg("one", dedup="same")])
    assert q.send_batch([msg("dup", dedup="same")]) == [first_id]  # the original's id
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE queue_dedup SET expires_at = now() - interval '1 second' WHERE queue = %s",
            (q.name,),
        )
    (second_id,) = q.send_batch([msg("two", dedup="same")])
    assert second_id != first_id
    assert sorted(m.body for m in q.receive(10)) == ["one", "two"]
    # Expired ids are swept by a later send.
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "UPDATE queue_dedup SET expires_at = now() - interval '1 second' WHERE queue = %s",
            (q.name,),
        )
    q._last_sweep = 0.0
    q.send_batch([msg("three", dedup="other")])
    with psycopg.connect(db, autocommit=True) as conn:
        (left,) = conn.execute(
            "SELECT count(*) FROM queue_dedup WHERE queue = %s", (q.name,)
        ).fetchone()
    assert left == 1  # only "other"


def test_receive_fills_a_batch_from_one_group_before_the_next(make) -> None:
    # SQS "returns as many messages with the same message group ID as possible".
    q = make()
    q.send_batch([msg("A1", "A"), msg("B1", "B"), msg("A2", "A"), msg("A3", "A")])
    assert [m.body for m in q.receive(10)] == ["A1", "A2", "A3", "B1"]


def test_a_backlog_behind_blocked_groups_still_flows(make) -> None:
    q = make()
    for start in range(0, 200, 10):  # 200 messages of 2 groups, then one of a third group
        q.send_batch([msg(f"m{i}", "AB"[i % 2]) for i in range(start, start + 10)])
    q.send_batch([msg("C", "C")])
    held = q.receive(10)
    assert {m.group_id for m in held} <= {"A", "B"}
    held += q.receive(10)
    # Groups A and B are in flight; the message of group C, last in the queue, still comes.
    assert [m.body for m in q.receive(10)] == ["C"]


def test_the_queue_recovers_when_its_connections_are_killed(make, db: str) -> None:
    q = make()
    q.send_batch([msg("before")])
    with psycopg.connect(db, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert killed >= 1
    q.send_batch([msg("after")])
    assert sorted(m.body for m in q.receive(10)) == ["after", "before"]


def test_a_callers_pool_works_and_stays_open(make, db: str) -> None:
    # Not autocommit: the queue must commit its own LISTEN and transactions.
    with ConnectionPool(db, min_size=1, max_size=2, open=True) as pool:
        q = PostgresQueue(pool, name=f"p{uuid.uuid4().hex[:8]}")
        timer = threading.Timer(0.3, lambda: q.send_batch([msg("via-pool")]))
        timer.start()
        try:
            got = q.receive(10, wait_seconds=5)
        finally:
            timer.join()
        assert [m.body for m in got] == ["via-pool"]
        q.delete([got[0].receipt_handle])
        q.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_relay_and_indexer_roles_can_do_their_part_only(make, db: str) -> None:
    name = f"roles{uuid.uuid4().hex[:8]}"
    relay = make(name=name, url=as_user(db, "refarch_relay"))
    indexer = make(name=name, url=as_user(db, "refarch_indexer"))
    owner = make(name=name)
    relay.send_batch([msg("r1", "A"), msg("r2", "B"), msg("r3", "C")])
    assert relay.stats().visible == 3
    with pytest.raises(QueueError, match="may not"):
        relay.receive(10)
    got = indexer.receive(10)
    assert len(got) == 3
    indexer.change_visibility(got[0].receipt_handle, 60)
    indexer.delete([got[0].receipt_handle])
    indexer.dead_letter(got[1], "bad row")
    assert [d.body for d in indexer.dead_letters()] == [got[1].body]
    with pytest.raises(QueueError, match="may not"):
        indexer.send_batch([msg("nope", dedup="x")])
    with pytest.raises(QueueError, match="redrive needs the owner"):
        indexer.redrive()
    assert owner.redrive() == 1


def test_missing_tables_are_reported_with_the_fix(new_database: Callable[..., str]) -> None:
    url = new_database(migrated=False)
    with PostgresQueue(url) as q, pytest.raises(QueueError, match="refarch db migrate"):
        q.stats()


def test_an_unreachable_database_fails_fast_and_clearly(tmp_path) -> None:
    q = PostgresQueue(f"host={tmp_path} port=1 dbname=x user=x")
    start = time.monotonic()
    with pytest.raises(QueueError, match="cannot connect to the queue database"):
        q.send_batch([msg("lost?")])
    assert time.monotonic() - start < 10
    q.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "has space"}, InputError, "queue name 'has space' is invalid"),
        ({"name": ""}, InputError, "queue name '' is invalid"),
        ({"max_receives": 0}, InputError, "max_receives=0"),
        ({"visibility_timeout": -1}, InputError, "visibility_timeout=-1"),
        ({"poll_interval": 0}, InputError, "poll_interval=0"),
    ],
)
def test_bad_constructor_arguments_are_refused(db: str, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        PostgresQueue(db, **kwargs)


def test_a_connection_string_or_pool_is_required() -> None:
    with pytest.raises(ConfigError, match="needs a libpq connection string"):
        PostgresQueue("")
