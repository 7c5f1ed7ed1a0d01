"""A full disk under the record store: SQLite's own SQLITE_FULL (reached here with
``max_page_count``, which SQLite reports exactly as it reports a full disk) comes out as the
real error, not as the "cannot rollback - no transaction is active" of a second ROLLBACK; the
server answers it with 507 (an outage); nothing of the failed write is stored; and the store
writes again once there is room."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from refarch.index.server.faults import is_storage_full, storage_full
from refarch.index.server.records import RecordStore


def _rows(prefix: str, n: int) -> list[tuple[str, bytes, str | None]]:
    return [(f"{prefix}{i}", bytes(64_000), None) for i in range(n)]


def test_a_full_disk_is_reported_as_itself_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "records.db")
    try:
        store.upsert("", _rows("kept-", 2), store.next_seq())
        pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
        store._writer.execute(f"PRAGMA max_page_count = {pages + 4}")  # the disk fills up
        with pytest.raises(sqlite3.Error) as caught:
            store.upsert("", _rows("lost-", 20), store.next_seq())
        assert "no transaction is active" not in str(caught.value)
        assert is_storage_full(caught.value)
        answer = storage_full(caught.value)
        assert answer.status == 507 and "full" in answer.body()["error"]["message"]
        assert not store._writer.in_transaction
        assert set(store.fetch("", ["kept-0", "kept-1", "lost-0"])) == {"kept-0", "kept-1"}

        store._writer.execute("PRAGMA max_page_count = 1073741823")  # room again
        store.upsert("", _rows("after-", 3), store.next_seq())
        assert set(store.fetch("", ["after-0", "after-2"])) == {"after-0", "after-2"}
    finally:
        store.close()


def test_other_errors_are_not_a_full_disk() -> None:
    assert not is_storage_full(sqlite3.OperationalError("no such table: x"))
    assert not is_storage_full(ValueError("bad"))
