"""The migration runner against a real database: order, idempotence, failures, concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from refarch.db.migrations import applied_migrations, available_migrations, migrate, pending_migrations
from refarch.errors import MigrationError


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql, encoding="utf-8")


def test_the_shipped_migrations_apply_once(new_database) -> None:
    url = new_database(migrated=False)
    shipped = available_migrations()
    assert shipped[0].filename == "0001_products.sql"
    assert pending_migrations(url) == shipped

    applied = migrate(url)
    assert [m.version for m in applied] == [m.version for m in shipped]
    assert migrate(url) == []
    assert pending_migrations(url) == []
    with psycopg.connect(url) as conn:
        recorded = applied_migrations(conn)
        columns = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'products'"
            ).fetchall()
        }
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'products'").fetchall()}
    assert set(recorded) == {m.version for m in shipped}
    assert columns["id"] == ("bigint", "NO")
    assert columns["sku"] == ("text", "NO")
    assert columns["price"] == ("numeric", "NO")
    assert columns["category"] == ("text", "YES")
    assert columns["last_updated"] == ("timestamp with time zone", "YES")
    # products_price_idx (0001) was dropped by 0004: no query filters products by price.
    assert indexes == {"products_pkey", "products_sku_key", "products_category_idx"}


def test_the_products_table_enforces_its_rules(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        insert = ("INSERT INTO products (sku, name, description, price) VALUES (%s, %s, %s, %s)")
        conn.execute(insert, ("A1", "Mug", "Keeps coffee hot.", 9.5))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, ("A1", "Other", "Other.", 1))
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, ("A2", "Mug", "Keeps coffee hot.", -1))
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute(insert, ("A3", "Mug", None, 1))
        with pytest.raises(psycopg.errors.GeneratedAlways):
            conn.execute("INSERT INTO products (id, sku, name, description, price) "
                         "VALUES (7, 'A4', 'n', 'd', 1)")
        row = conn.execute("SELECT created_at IS NOT NULL, updated_at IS NOT NULL, price "
                           "FROM products WHERE sku = 'A1'").fetchone()
    assert row is not None and row[0] and row[1] and str(row[2]) == "9.50"


def test_new_files_are_applied_in_order_after_the_applied_ones(
    new_database, tmp_path: Path
) -> None:
    url = new_database(migrated=False)
    _write(tmp_path, "0001_first.sql", "CREATE TABLE t (v int);")
    assert [m.filename for m in migrate(url, tmp_path)] == ["0001_first.sql"]
    _write(tmp_path, "0003_third.sql", "INSERT INTO t VALUES (3);")
    _write(tmp_path, "0002_second.sql", "INSERT INTO t VALUES (2); INSERT INTO t VALUES (22);")
    assert [m.version for m in migrate(url, tmp_path)] == [2, 3]
    with psycopg.connect(url) as conn:
        assert [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")] == [2, 3, 22]


def test_a_failing_migration_is_rolled_back_and_named(new_database, tmp_path: Path) -> None:
    url = new_database(migrated=False)
    _write(tmp_path, "0001_ok.sql", "CREATE TABLE ok (v int);")
    _write(tmp_path, "0002_broken.sql", "CREATE TABLE half (v int); SELECT no_such_column;")
    with pytest.raises(MigrationError, match="0002_broken.sql failed and was rolled back"):
        migrate(url, tmp_path)
    with psycopg.connect(url) as conn:
        assert set(applied_migrations(conn)) == {1}
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
    _write(tmp_path, "0002_broken.sql", "CREATE TABLE half (v int);")  # fixed before release
    assert [m.version for m in migrate(url, tmp_path)] == [2]


def test_editing_an_applied_migration_is_refused(new_database, tmp_path: Path) -> None:
    url = new_database(migrated=False)
    _write(tmp_path, "0001_first.sql", "CREATE TABLE t (v int);")
    migrate(url, tmp_path)
    _write(tmp_path, "0001_first.sql", "CREATE TABLE t (v bigint);")
    with pytest.raises(MigrationError, match="0001_first.sql changed after it was applied"):
        migrate(url, tmp_path)


def test_concurrent_runs_apply_each_migration_once(new_database, tmp_path: Path) -> None:
    url = new_database(migrated=False)
    # Not idempotent on purpose: a second application would fail.
    _write(tmp_path, "0001_once.sql", "CREATE TABLE once (v int); SELECT pg_sleep(0.3);")
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append([m.version for m in migrate(url, tmp_path)])
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [[], [], [1]]


def test_badly_named_or_clashing_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "0001_first.sql", "SELECT 1;")
    _write(tmp_path, "notes.txt", "ignored")
    assert [m.filename for m in available_migrations(tmp_path)] == ["0001_first.sql"]
    _write(tmp_path, "0001_again.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="share version 1"):
        available_migrations(tmp_path)
    (tmp_path / "0001_again.sql").unlink()
    _write(tmp_path, "2_Bad Name.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="is not named NNNN_lower_case_words.sql"):
        available_migrations(tmp_path)
