"""Migration 0002: versions, the outbox written by triggers, NOTIFY as a wake-up, roles.

Every test runs against a real PostgreSQL server on a fresh database migrated by the real
migration runner.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from refarch.db.migrations import available_migrations, migrate
from refarch.errors import QueueError
from refarch.pipeline import outbox
from refarch.queue.local import PostgresQueue


def _insert(conn: psycopg.Connection, sku: str, **fields: object) -> int:
    values = {"name": f"Product {sku}", "description": "a plain product", "price": 10, "category": "Kitchen"}
    values.update(fields)
    row = conn.execute(
        "INSERT INTO products (sku, name, description, price, category) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (sku, values["name"], values["description"], values["price"], values["category"]),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _outbox(conn: psycopg.Connection) -> list[tuple[int, str, int]]:
    return [tuple(r) for r in conn.execute("SELECT product_id, op, version FROM outbox ORDER BY id")]  # type: ignore[misc]


def _versions(conn: psycopg.Connection, pid: int) -> tuple[int, int]:
    row = conn.execute("SELECT version, search_version FROM products WHERE id = %s", (pid,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_insert_writes_one_outbox_row_in_the_same_transaction(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        with pytest.raises(RuntimeError):
            with conn.transaction():
                _insert(conn, "ROLLED-BACK")
                assert len(_outbox(conn)) == 1  # visible inside the transaction
                raise RuntimeError("abort")
        assert _outbox(conn) == []  # rolled back together with the row
        pid = _insert(conn, "A1")
        version, search_version = _versions(conn, pid)
        assert version == search_version
        assert _outbox(conn) == [(pid, "upsert", version)]


def test_update_of_an_indexed_column_bumps_versions_and_writes_outbox(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        pid = _insert(conn, "A1")
        before, _ = _versions(conn, pid)
        conn.execute("DELETE FROM outbox")
        for column, value in [("name", "Renamed"), ("description", "new text"),
                              ("category", "Garden"), ("price", 11), ("sku", "A1-NEW")]:
            conn.execute(f"UPDATE products SET {column} = %s WHERE id = %s", (value, pid))
            version, search_version = _versions(conn, pid)
            assert version > before and search_version == version, column
            assert _outbox(conn)[-1] == (pid, "upsert", version), column
            before = version
        assert len(_outbox(conn)) == 5


def test_change_to_a_non_indexed_column_bumps_version_but_writes_no_outbox_row(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        pid = _insert(conn, "A1")
        version, search_version = _versions(conn, pid)
        conn.execute("DELETE FROM outbox")
        conn.execute("UPDATE products SET last_updated = now() WHERE id = %s", (pid,))
        new_version, new_search_version = _versions(conn, pid)
        assert new_version > version  # every change bumps the row version
        assert new_search_version == search_version  # ... but the index needs nothing
        assert _outbox(conn) == []
        updated_at = conn.execute("SELECT updated_at FROM products WHERE id = %s", (pid,)).fetchone()
        assert updated_at is not None and updated_at[0] is not None


def test_update_that_changes_nothing_keeps_versions_and_writes_nothing(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        pid = _insert(conn, "A1")
        versions = _versions(conn, pid)
        conn.execute("DELETE FROM outbox")
        conn.execute("UPDATE products SET name = name, price = price WHERE id = %s", (pid,))
        conn.execute("UPDATE products SET version = 1, search_version = 1 WHERE id = %s", (pid,))
        assert _versions(conn, pid) == versions  # versions cannot be set by hand either
        assert _outbox(conn) == []


def test_delete_and_truncate_write_delete_rows_with_higher_versions(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        a, b, c = (_insert(conn, sku) for sku in ("A", "B", "C"))
        top = max(_versions(conn, pid)[0] for pid in (a, b, c))
        conn.execute("DELETE FROM outbox")
        conn.execute("DELETE FROM products WHERE id = %s", (a,))
        conn.execute("TRUNCATE products")
        rows = _outbox(conn)
        assert rows[0][:2] == (a, "delete")
        assert sorted((pid, op) for pid, op, _ in rows[1:]) == [(b, "delete"), (c, "delete")]
        assert all(version > top for _, _, version in rows)


def test_versions_keep_growing_across_delete_and_reinsert_of_an_id(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        pid = _insert(conn, "A")
        conn.execute("DELETE FROM products WHERE id = %s", (pid,))
        delete_version = _outbox(conn)[-1][2]
        conn.execute(
            "INSERT INTO products (id, sku, name, description, price) OVERRIDING SYSTEM VALUE "
            "VALUES (%s, 'A', 'again', 'back', 1)", (pid,),
        )
        version, _ = _versions(conn, pid)
        assert version > delete_version


@pytest.mark.parametrize("size", [8_001, 200_000])
def test_long_descriptions_are_captured_without_error(pipeline_db: str, size: int) -> None:
    # The reference architecture NOTIFY'd the row itself, so > 8,000 bytes failed the UPDATE.
    text = ("long description é " * (size // 10))[:size]
    assert len(text.encode()) > 8_000
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        pid = _insert(conn, "LONG", description=text)
        conn.execute("UPDATE products SET description = %s WHERE id = %s", (text + " more", pid))
        assert [op for _, op, _ in _outbox(conn)] == ["upsert", "upsert"]
        stored = conn.execute("SELECT description FROM products WHERE id = %s", (pid,)).fetchone()
        assert stored is not None and stored[0] == text + " more"


def test_insert_stamps_versions_whatever_the_statement_or_search_path(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        before, _ = _versions(conn, _insert(conn, "FIRST"))
        # Hand-set versions are replaced, and the stamp does not depend on search_path
        # (migration 0004's insert trigger has every name schema-qualified).
        conn.execute("SET search_path = pg_temp")
        schema = conn.execute("SELECT nspname FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c "
                              "ON c.relnamespace = n.oid WHERE c.relname = 'products'").fetchone()
        assert schema is not None
        row = conn.execute(
            f'INSERT INTO "{schema[0]}".products (sku, name, description, price, version, search_version) '
            "VALUES ('HAND', 'Mug', 'A mug', 1, 1, 1) RETURNING version, search_version").fetchone()
        assert row is not None and row[0] == row[1] and row[0] > before
        conn.execute("RESET search_path")
        ids = [_insert(conn, f"MULTI-{i}") for i in range(3)]
        stamped = [_versions(conn, pid) for pid in ids]
        assert all(version == search for version, search in stamped)
        assert len({version for version, _ in stamped}) == 3


def test_copy_of_many_rows_writes_one_outbox_row_each(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        with conn.cursor().copy("COPY products (sku, name, description, price) FROM STDIN") as copy:
            for i in range(5_000):
                copy.write_row((f"SKU-{i}", f"name {i}", "desc", i % 100))
        counts = conn.execute(
            "SELECT count(*), count(DISTINCT product_id), bool_and(op = 'upsert') FROM outbox"
        ).fetchone()
        assert counts == (5_000, 5_000, True)
        # Each row's outbox version is the row's search version, which is its version.
        mismatched = conn.execute(
            "SELECT count(*) FROM outbox o JOIN products p ON p.id = o.product_id "
            "WHERE o.version <> p.search_version OR p.version <> p.search_version"
        ).fetchone()
        assert mismatched == (0,)
        distinct = conn.execute("SELECT count(DISTINCT version) FROM products").fetchone()
        assert distinct == (5_000,)


def test_notify_is_sent_on_commit_only_and_carries_no_data(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as listener, \
            psycopg.connect(pipeline_db, autocommit=True) as writer:
        listener.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
        with pytest.raises(RuntimeError):
            with writer.transaction():
                _insert(writer, "ROLLED-BACK")
                raise RuntimeError("abort")
        assert list(listener.notifies(timeout=0.3)) == []
        _insert(writer, "A")
        notes = list(listener.notifies(timeout=2, stop_after=1))
        assert len(notes) == 1 and notes[0].payload == ""


def test_rows_that_predate_the_migration_are_announced_once(pg_server, tmp_path: Path) -> None:
    only_0001 = tmp_path / "sql"
    only_0001.mkdir()
    first = available_migrations()[0]
    (only_0001 / first.filename).write_text(first.sql)
    name = "pipeline_predate"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.url(name)
    try:
        migrate(url, only_0001)
        with psycopg.connect(url, autocommit=True) as conn:
            for sku in ("OLD-1", "OLD-2"):
                conn.execute(
                    "INSERT INTO products (sku, name, description, price) VALUES (%s, 'n', 'd', 1)", (sku,)
                )
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT o.product_id, o.op, o.version = p.search_version FROM outbox o "
                "JOIN products p ON p.id = o.product_id ORDER BY o.id"
            ).fetchall()
            assert [(op, same) for _, op, same in rows] == [("upsert", True), ("upsert", True)]
            # Running the file again (as a re-applied script) announces nothing twice.
            conn.execute(available_migrations()[1].sql)
            assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (2,)
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_roles_are_created_once_and_a_second_database_migrates_cleanly(pg_server) -> None:
    names = ["pipeline_roles_a", "pipeline_roles_b"]
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            migrate(pg_server.url(name))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with psycopg.connect(pg_server.url(names[1]), autocommit=True) as conn:
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE 'refarch\\_%' ORDER BY 1"
            ).fetchall()
            assert [r[0] for r in roles] == ["refarch_app", "refarch_indexer", "refarch_relay"]
    finally:
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_existing_role_attributes_are_left_alone(pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as conn:
        conn.execute("ALTER ROLE refarch_indexer CONNECTION LIMIT 7")
        try:
            conn.execute(available_migrations()[1].sql)  # roles exist: nothing is recreated
            limit = conn.execute(
                "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'refarch_indexer'"
            ).fetchone()
            assert limit == (7,)
        finally:
            conn.execute("ALTER ROLE refarch_indexer CONNECTION LIMIT -1")


def _denied(url: str, sql: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_app_role_reads_and_writes_products_only(app_url: str, pipeline_db: str) -> None:
    with psycopg.connect(app_url, autocommit=True) as conn:
        pid = _insert(conn, "APP-1")
        conn.execute("UPDATE products SET name = 'by app' WHERE id = %s", (pid,))
        conn.execute("DELETE FROM products WHERE id = %s", (pid,))
        pending = conn.execute("SELECT pending FROM outbox_stats()").fetchone()
        assert pending == (3,)  # its changes reached the outbox through the triggers
    assert _denied(app_url, "SELECT * FROM outbox")
    assert _denied(app_url, "DELETE FROM outbox")
    assert _denied(app_url, "SELECT nextval('product_version_seq')")


def test_app_role_counts_lists_and_redrives_dead_letters_but_consumes_nothing(
    app_url: str, pipeline_db: str
) -> None:
    # The app's status page does this as the app role (migration 0005), never as the owner.
    with psycopg.connect(pipeline_db, autocommit=True) as owner:
        owner.execute(
            "INSERT INTO queue_dead_letters (queue, message_id, group_id, dedup_id, body, sent_at, "
            "receive_count, error) VALUES ('app-role', gen_random_uuid(), 'g', 'd', 'body', now(), "
            "5, 'boom')"
        )
    queue = PostgresQueue(app_url, name="app-role")
    try:
        assert queue.stats().dead == 1
        assert [letter.error for letter in queue.dead_letters()] == ["boom"]
        assert queue.redrive() == 1
        assert (queue.stats().visible, queue.stats().dead) == (1, 0)
        with pytest.raises(QueueError, match="permission|privilege"):
            queue.receive(1)
    finally:
        queue.close()
    for statement in (
        "UPDATE queue_messages SET visible_at = now()",
        "DELETE FROM queue_messages",
        "SELECT * FROM queue_dedup",
        "INSERT INTO queue_dead_letters (queue, message_id, group_id, dedup_id, body, sent_at, "
        "receive_count) VALUES ('app-role', gen_random_uuid(), 'g', 'd', 'b', now(), 1)",
        "INSERT INTO reconcile_runs DEFAULT VALUES",
    ):
        assert _denied(app_url, statement), statement


def test_relay_role_reads_products_and_consumes_the_outbox_only(relay_url: str, pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as owner:
        pid = _insert(owner, "R-1")
    with psycopg.connect(relay_url, autocommit=True) as conn:
        with conn.transaction():
            rows = outbox.claim(conn, 10)
            assert [r.product_id for r in rows] == [pid]
            assert outbox.delete(conn, [r.id for r in rows]) == 1
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (1,)
    assert _denied(relay_url, "UPDATE products SET name = 'x'")
    assert _denied(relay_url, "INSERT INTO products (sku, name, description, price) VALUES ('x','x','x',1)")
    assert _denied(relay_url, "DELETE FROM products")
    assert _denied(relay_url, "INSERT INTO outbox (product_id, op, version) VALUES (1, 'upsert', 1)")


def test_indexer_role_only_reads_products(indexer_url: str, pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as owner:
        _insert(owner, "I-1")
    with psycopg.connect(indexer_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (1,)
    assert _denied(indexer_url, "UPDATE products SET name = 'x'")
    assert _denied(indexer_url, "SELECT * FROM outbox")
    assert _denied(indexer_url, "DELETE FROM products")


def test_concurrent_relays_claim_disjoint_rows_without_waiting(relay_url: str, pipeline_db: str) -> None:
    with psycopg.connect(pipeline_db, autocommit=True) as owner:
        for i in range(10):
            _insert(owner, f"C-{i}")
    with psycopg.connect(relay_url, autocommit=True) as first, \
            psycopg.connect(relay_url, autocommit=True) as second:
        with first.transaction():
            mine = outbox.claim(first, 6)
            started = time.monotonic()
            with second.transaction():
                theirs = outbox.claim(second, 6)
            assert time.monotonic() - started < 1.0  # skipped, not waited for
        assert len(mine) == 6 and len(theirs) == 4
        assert not {r.id for r in mine} & {r.id for r in theirs}
