"""The durable record store of one index: SQLite in WAL mode, ``synchronous=FULL``.

SQLite is the source of truth. Every write request is one transaction stamped with a sequence
number (``seq``), and the server acknowledges the request only after the commit returned, by
which time the WAL has been fsynced: a ``kill -9`` (or a power cut) cannot lose an acknowledged
write, and a half-done transaction is rolled back on the next open. Deletes keep a tombstone row
(``deleted = 1``) until a snapshot newer than it exists, so the in-memory state can be rebuilt
from "newest snapshot + every row with a larger ``seq``".

Sequence numbers are never reused, also across restarts: every write transaction also raises a
persisted high-water mark (table ``sequence``), and the counter resumes above both it and the
highest stored ``seq``. The stored rows alone do not remember every number handed out: pruned
tombstones and deletes of ids that were never stored leave none, yet a snapshot may already
cover those numbers, and a write that reused one would be skipped by the replay after a crash.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    ns      TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    vec     BLOB,
    meta    TEXT,
    PRIMARY KEY (ns, id)
);
CREATE INDEX IF NOT EXISTS records_by_seq ON records (ns, seq);
CREATE TABLE IF NOT EXISTS namespaces (ns TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS sequence (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    last_seq INTEGER NOT NULL
);
"""

# Raises the high-water mark inside a write's transaction (never lowers it).
_MARK = (
    "INSERT INTO sequence (one, last_seq) VALUES (1, ?) "
    "ON CONFLICT (one) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)"
)

# SQLite's default limit on host parameters is 32766; stay far below it.
_IN_CHUNK = 900


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix`` (None: no bound)."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    return prefix[:-1] + chr(last + 1)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already: on a full disk (SQLITE_FULL)
    it rolls back by itself, and a second ROLLBACK would raise "no transaction is active" and
    hide the real error from the caller (who answers 507 for a full disk)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class RecordStore:
    """Records (namespace, id) -> (vector bytes, metadata JSON) with tombstones and sequence.

    Reads may come from any thread (each gets its own connection); writes share one connection
    and must be serialised by the caller (the engine's write lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        row = self._writer.execute(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM records), 0),"
            " COALESCE((SELECT last_seq FROM sequence), 0))"
        ).fetchone()
        #: The last sequence number handed out (writes are serialised by the engine).
        self.last_seq: int = int(row[0])

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA cache_size=-32768")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (the WAL is checkpointed by the last one)."""
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._writer.close()

    # -- writes (one transaction each; the caller serialises them) ---------------------------

    def next_seq(self) -> int:
        """Reserve the sequence number of the next write (its transaction persists it)."""
        self.last_seq += 1
        return self.last_seq

    def _transaction(self) -> sqlite3.Connection:
        self._writer.execute("BEGIN IMMEDIATE")
        return self._writer

    def upsert(self, ns: str, rows: Iterable[tuple[str, bytes, str | None]], seq: int) -> None:
        """Insert or replace ``(id, vector bytes, metadata JSON)`` rows."""
        self.upsert_many([(ns, rows, seq)])

    def upsert_many(
        self, writes: Sequence[tuple[str, Iterable[tuple[str, bytes, str | None]], int]]
    ) -> None:
        """Several upserts ``(namespace, rows, seq)`` in one transaction (one fsync), in order."""
        conn = self._transaction()
        try:
            for ns, rows, seq in writes:
                conn.executemany(
                    "INSERT INTO records (ns, id, seq, deleted, vec, meta) "
                    "VALUES (?, ?, ?, 0, ?, ?) "
                    "ON CONFLICT (ns, id) DO UPDATE SET seq = excluded.seq, deleted = 0, "
                    "vec = excluded.vec, meta = excluded.meta",
                    ((ns, vid, seq, vec, meta) for vid, vec, meta in rows),
                )
            if writes:
                conn.execute(_MARK, (max(seq for _, _, seq in writes),))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def update(
        self, ns: str, rows: Iterable[tuple[str, bytes | None, str | None]], seq: int
    ) -> None:
        """Change existing rows: a ``None`` vector or metadata keeps the stored one."""
        conn = self._transaction()
        try:
            conn.executemany(
                "UPDATE records SET seq = ?, vec = COALESCE(?, vec), meta = COALESCE(?, meta) "
                "WHERE ns = ? AND id = ? AND deleted = 0",
                ((seq, vec, meta, ns, vid) for vid, vec, meta in rows),
            )
            conn.execute(_MARK, (seq,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def delete(self, ns: str, ids: Sequence[str], seq: int) -> None:
        """Tombstone ``ids`` (unknown ids are ignored)."""
        conn = self._transaction()
        try:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"UPDATE records SET seq = ?, deleted = 1, vec = NULL, meta = NULL "
                    f"WHERE ns = ? AND deleted = 0 AND id IN ({marks})",
                    (seq, ns, *chunk),
                )
            conn.execute(_MARK, (seq,))  # also when no id was stored: the seq is used
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def drop_namespace(self, ns: str, seq: int, forget: bool) -> None:
        """Tombstone every record of ``ns``; ``forget``: also that it was created explicitly."""
        conn = self._transaction()
        try:
            conn.execute(
                "UPDATE records SET seq = ?, deleted = 1, vec = NULL, meta = NULL "
                "WHERE ns = ? AND deleted = 0",
                (seq, ns),
            )
            if forget:
                conn.execute("DELETE FROM namespaces WHERE ns = ?", (ns,))
            conn.execute(_MARK, (seq,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def create_namespace(self, ns: str) -> None:
        """Record that ``ns`` was created explicitly (it exists even while empty)."""
        self._writer.execute("INSERT OR IGNORE INTO namespaces (ns) VALUES (?)", (ns,))

    def prune_tombstones(self, ns: str, upto_seq: int) -> None:
        """Remove tombstones a durable snapshot (taken at ``upto_seq``) already reflects."""
        self._writer.execute(
            "DELETE FROM records WHERE ns = ? AND deleted = 1 AND seq <= ?", (ns, upto_seq)
        )

    # -- reads -------------------------------------------------------------------------------

    def fetch(self, ns: str, ids: Sequence[str]) -> dict[str, tuple[bytes, str | None]]:
        """Live records among ``ids``: id -> (vector bytes, metadata JSON or None)."""
        conn = self._reader()
        found: dict[str, tuple[bytes, str | None]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for vid, vec, meta in conn.execute(
                f"SELECT id, vec, meta FROM records WHERE ns = ? AND deleted = 0 "
                f"AND id IN ({marks})",
                (ns, *chunk),
            ):
                found[vid] = (vec, meta)
        return found

    def list_ids(self, ns: str, prefix: str, after: str | None, limit: int) -> list[str]:
        """Live ids of ``ns`` starting with ``prefix``, in byte order, after ``after``."""
        conn = self._reader()
        sql = "SELECT id FROM records WHERE ns = ? AND deleted = 0"
        params: list[object] = [ns]
        if prefix:
            # A range on the primary key lets SQLite seek instead of scanning the namespace.
            sql += " AND id >= ? AND substr(id, 1, ?) = ?"
            params += [prefix, len(prefix), prefix]
            upper = _prefix_upper_bound(prefix)
            if upper is not None:
                sql += " AND id < ?"
                params.append(upper)
        if after is not None:
            sql += " AND id > ?"
            params.append(after)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [row[0] for row in conn.execute(sql, params)]

    def changes_since(
        self, ns: str, seq: int
    ) -> Iterator[tuple[str, int, bool, bytes | None, str | None]]:
        """Rows of ``ns`` written after ``seq``, oldest first: (id, seq, deleted, vec, meta)."""
        conn = self._reader()
        cursor = conn.execute(
            "SELECT id, seq, deleted, vec, meta FROM records WHERE ns = ? AND seq > ? "
            "ORDER BY seq",
            (ns, seq),
        )
        for vid, row_seq, deleted, vec, meta in cursor:
            yield vid, row_seq, bool(deleted), vec, meta

    def namespaces(self) -> set[str]:
        """Namespaces with any row (live or tombstone) or created explicitly."""
        conn = self._reader()
        found = {row[0] for row in conn.execute("SELECT DISTINCT ns FROM records")}
        found |= {row[0] for row in conn.execute("SELECT ns FROM namespaces")}
        return found

    def created_namespaces(self) -> set[str]:
        """Namespaces created explicitly (``create_namespace``)."""
        conn = self._reader()
        return {row[0] for row in conn.execute("SELECT ns FROM namespaces")}
