"""The relay and backfill against real Postgres and the real local queue."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from refarch.bootstrap import with_user
from refarch.errors import QueueError
from refarch.pipeline import outbox
from refarch.pipeline.backfill import backfill
from refarch.pipeline.relay import drain, relay_step, run
from refarch.queue.local import PostgresQueue
from tests.support.waiting import wait_until


def _insert_many(url: str, n: int, prefix: str = "P") -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "INSERT INTO products (sku, name, description, price, category) "
            "SELECT %s || g, 'name ' || g, 'desc', g, 'Kitchen' FROM generate_series(1, %s) g "
            "RETURNING id",
            (prefix, n),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _bodies(queue: PostgresQueue) -> list[dict]:
    found = []
    while True:
        got = queue.receive(10, visibility_timeout=60)
        if not got:
            return found
        found.extend(json.loads(m.body) for m in got)
        queue.delete([m.receipt_handle for m in got])


@pytest.fixture
def queue(relay_url: str):
    """The queue as the relay sees it (its role may send, not receive)."""
    q = PostgresQueue(relay_url, name="products", max_receives=3, visibility_timeout=30)
    yield q
    q.close()


@pytest.fixture
def reader(pipeline_db: str):
    """The same queue as the owner sees it, to read what the relay sent."""
    q = PostgresQueue(pipeline_db, name="products", max_receives=3, visibility_timeout=30)
    yield q
    q.close()


def test_step_publishes_coalesced_changes_then_deletes_the_rows(pipeline_db, relay_url,
                                                                queue, reader) -> None:
    (a, b) = _insert_many(pipeline_db, 2)
    with psycopg.connect(pipeline_db, autocommit=True) as owner:
        owner.execute("UPDATE products SET name = 'again' WHERE id = %s", (a,))
        owner.execute("UPDATE products SET name = 'and again' WHERE id = %s", (a,))
        version_a = owner.execute("SELECT search_version FROM products WHERE id = %s", (a,)).fetchone()[0]
    with psycopg.connect(relay_url, autocommit=True) as conn:
        result = relay_step(conn, queue, batch_size=100)
        assert (result.claimed, result.published) == (4, 2)
        assert outbox.stats(conn).pending == 0
    bodies = {b["product_id"]: b for b in _bodies(reader)}
    assert set(bodies) == {a, b}
    assert bodies[a]["version"] == version_a and bodies[a]["op"] == "upsert"


def test_rows_stay_in_the_outbox_when_the_queue_does_not_acknowledge(pipeline_db,
                                                                     relay_url, pg_server) -> None:
    _insert_many(pipeline_db, 3)
    broken = PostgresQueue(pg_server.url("no_such_database"), name="products")
    with psycopg.connect(relay_url, autocommit=True) as conn:
        with pytest.raises(QueueError):
            relay_step(conn, broken, batch_size=100)
        assert outbox.stats(conn).pending == 3  # nothing lost


def test_deletes_are_published(pipeline_db, relay_url, queue, reader) -> None:
    (a,) = _insert_many(pipeline_db, 1)
    with psycopg.connect(relay_url, autocommit=True) as conn:
        drain(conn, queue, 10)
    _bodies(reader)
    with psycopg.connect(pipeline_db, autocommit=True) as owner:
        owner.execute("DELETE FROM products WHERE id = %s", (a,))
    with psycopg.connect(relay_url, autocommit=True) as conn:
        drain(conn, queue, 10)
    assert [(b["product_id"], b["op"]) for b in _bodies(reader)] == [(a, "delete")]


def test_two_relays_together_publish_every_change(pipeline_db, relay_url, queue, reader) -> None:
    ids = _insert_many(pipeline_db, 300)
    errors: list[BaseException] = []

    def relay() -> None:
        try:
            with psycopg.connect(relay_url, autocommit=True) as conn:
                drain(conn, queue, 7)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(b["product_id"] for b in _bodies(reader)) == sorted(ids)


def test_run_wakes_on_notify_long_before_its_poll_interval(pipeline_db, relay_url, queue, reader) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=run,
        args=(lambda: psycopg.connect(relay_url, autocommit=True), queue),
        kwargs={"batch_size": 100, "poll_seconds": 30.0, "stop": stop},
    )
    thread.start()
    try:
        time.sleep(0.5)  # let it drain and start listening
        (pid,) = _insert_many(pipeline_db, 1)
        wait_until(lambda: queue.stats().visible > 0, 5, interval=0.02)
        assert queue.stats().visible == 1  # woke by NOTIFY, not by the 30 s poll
    finally:
        stop.set()
        thread.join(timeout=40)
    assert not thread.is_alive()
    assert [b["product_id"] for b in _bodies(reader)] == [pid]


def test_changes_made_while_no_relay_ran_are_relayed_when_one_starts(pipeline_db, relay_url,
                                                                     queue, reader) -> None:
    # The reference architecture lost these for good: NOTIFY was the carrier.
    ids = _insert_many(pipeline_db, 25)
    stop = threading.Event()
    thread = threading.Thread(
        target=run,
        args=(lambda: psycopg.connect(relay_url, autocommit=True), queue),
        kwargs={"batch_size": 10, "poll_seconds": 0.2, "stop": stop},
    )
    thread.start()
    try:
        wait_until(lambda: queue.stats().visible >= 25, 10, interval=0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert sorted(b["product_id"] for b in _bodies(reader)) == sorted(ids)


def test_backfill_enqueues_every_product_without_blocking_writers(pipeline_db, relay_url,
                                                                  queue, reader) -> None:
    ids = _insert_many(pipeline_db, 250)
    with psycopg.connect(pipeline_db, autocommit=False) as writer:
        # A writer holds row locks on products for the whole backfill: backfill must not wait.
        writer.execute("UPDATE products SET name = 'locked' WHERE id = ANY(%s)", (ids[:50],))
        with psycopg.connect(relay_url, autocommit=True) as conn:
            started = time.monotonic()
            result = backfill(conn, queue, batch_size=40, progress=False)
            assert time.monotonic() - started < 20
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        writer.commit()
    assert result.enqueued == 250
    bodies = _bodies(reader)
    assert sorted(b["product_id"] for b in bodies) == sorted(ids)
    assert {b["source"] for b in bodies} == {"backfill"}


def test_a_second_backfill_is_not_dropped_as_a_duplicate(pipeline_db, relay_url, queue, reader) -> None:
    _insert_many(pipeline_db, 5)
    with psycopg.connect(relay_url, autocommit=True) as conn:
        backfill(conn, queue, progress=False)
        _bodies(reader)
        backfill(conn, queue, progress=False)
    assert len(_bodies(reader)) == 5


def test_relay_role_url_is_derived_from_the_owner_url(pipeline_db) -> None:
    assert "user=refarch_relay" in with_user(pipeline_db, "refarch_relay")
