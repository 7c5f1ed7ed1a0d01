"""An in-memory stand-in for the Postgres side of the pipeline: products, outbox, reconcile runs.

The indexer, the relay and reconcile take a psycopg connection (or a function that opens one).
:meth:`FakeProductsDatabase.connect` returns a :class:`FakeConnection` that answers the few
statements those modules issue, from Python dicts, so their logic runs in a unit test without a
server. Writes go through Python methods that do what the migrations' triggers do:

* :meth:`~FakeProductsDatabase.insert` stamps ``version`` and ``search_version`` from one
  global sequence and captures an ``upsert`` in the outbox;
* :meth:`~FakeProductsDatabase.update` bumps ``version`` on any change, and ``search_version``
  (capturing an ``upsert``) only when an indexed column (sku, name, category, description,
  price) changed;
* :meth:`~FakeProductsDatabase.delete` captures a ``delete`` with a fresh version.

The connection understands ``SELECT 1``; ``SELECT <columns> FROM products`` (optionally
``WHERE id = ANY(%s)``, also through a named cursor); the outbox's claim, delete and stats;
``INSERT INTO reconcile_runs`` and the latest-run query; ``LISTEN``/``UNLISTEN`` (no-ops) and
``notifies`` (no notifications: it sleeps the timeout on the database's clock). Anything else
raises ``NotImplementedError`` naming the statement: a fake that guessed would hide a change.
Transactions are no-ops (nothing here is concurrent). Setting ``down`` makes ``connect`` and
every statement raise ``psycopg.OperationalError``, as a database that went away does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from refarch.clock import Clock
from refarch.fakes.clock import FakeClock

#: The columns of ``products`` (migrations 0001 and 0002), in table order.
PRODUCT_COLUMNS = (
    "id", "sku", "name", "category", "description", "price", "last_updated", "created_at",
    "updated_at", "version", "search_version",
)
#: Columns whose change moves ``search_version`` (what the index holds).
INDEXED_COLUMNS = ("sku", "name", "category", "description", "price")
OUTBOX_COLUMNS = ("id", "product_id", "op", "version", "created_at")
RECONCILE_COLUMNS = (
    "id", "started_at", "finished_at", "products", "vectors", "missing", "stale", "orphaned", "repaired",
)

_SELECT = re.compile(r"SELECT (?P<columns>[\w, ]+?) FROM (?P<table>\w+)(?P<rest>.*)")


@dataclass
class Result:
    """What ``execute`` returns: the rows (``fetchall``/``fetchone``) and ``rowcount``."""

    rows: list[tuple[Any, ...]]
    rowcount: int = -1
    description: list[str] | None = None

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row."""
        return list(self.rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


class FakeProductsDatabase:
    """The products table, its outbox and ``reconcile_runs``, in memory (see the module docstring)."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        #: The clock that stamps ``created_at``, ``updated_at`` and outbox rows.
        self.clock: Clock = clock if clock is not None else FakeClock()
        #: While true, connecting and every statement fail (the database is unreachable).
        self.down = False
        self.products: dict[int, dict[str, Any]] = {}
        self.outbox: list[dict[str, Any]] = []
        self.reconcile_runs: list[dict[str, Any]] = []
        self._ids = 0
        self._outbox_ids = 0
        self._version = 0

    def connect(self) -> FakeConnection:
        """A new connection (what ``psycopg.connect(url, autocommit=True)`` gives the pipeline)."""
        self.check_up()
        return FakeConnection(self)

    def check_up(self) -> None:
        """Raise ``psycopg.OperationalError`` while the database is down."""
        if self.down:
            raise psycopg.OperationalError("connection refused: the fake database is down")

    # -- writes, with the triggers' bookkeeping ---------------------------------------------

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def _capture(self, product_id: int, op: str, version: int) -> None:
        self._outbox_ids += 1
        self.outbox.append({"id": self._outbox_ids, "product_id": product_id, "op": op,
                            "version": version, "created_at": self.clock.now()})

    def insert(self, sku: str, *, name: str | None = None, description: str = "a thing",
               price: float | Decimal = 10, category: str | None = "Kitchen",
               last_updated: datetime | None = None) -> int:
        """Insert a product; returns its id (as ``INSERT ... RETURNING id``)."""
        self._ids += 1
        version = self._next_version()
        now = self.clock.now()
        self.products[self._ids] = {
            "id": self._ids, "sku": sku, "name": name if name is not None else f"Product {sku}",
            "category": category, "description": description, "price": _money(price),
            "last_updated": last_updated, "created_at": now, "updated_at": now,
            "version": version, "search_version": version,
        }
        self._capture(self._ids, "upsert", version)
        return self._ids

    def update(self, product_id: int, **changes: Any) -> None:
        """Change columns of a product (``update(7, price=12)``), as an ``UPDATE`` would."""
        row = self.products[product_id]
        unknown = set(changes) - set(PRODUCT_COLUMNS)
        if unknown:
            raise KeyError(f"products has no column(s) {sorted(unknown)}")
        if "price" in changes:
            changes["price"] = _money(changes["price"])
        if all(row[column] == value for column, value in changes.items()):
            return  # a statement that changes nothing keeps the versions
        indexed = any(column in INDEXED_COLUMNS and row[column] != value
                      for column, value in changes.items())
        row.update(changes)
        row["version"] = self._next_version()
        if "updated_at" not in changes:
            row["updated_at"] = self.clock.now()
        if indexed:
            row["search_version"] = row["version"]
            self._capture(product_id, "upsert", row["search_version"])

    def delete(self, product_id: int) -> None:
        """Delete a product (its removal is captured in the outbox)."""
        del self.products[product_id]
        self._capture(product_id, "delete", self._next_version())

    # -- statements ---------------------------------------------------------------------------

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Result:
        """Run one of the statements the pipeline issues (see the module docstring)."""
        self.check_up()
        statement = " ".join(query.split())
        if statement == "SELECT 1":
            return Result([(1,)], 1, ["?column?"])
        if statement.startswith(("LISTEN ", "UNLISTEN ")):
            return Result([], 0)
        if statement == "SELECT pending, oldest FROM outbox_stats()":
            oldest = min((r["created_at"] for r in self.outbox), default=None)
            return Result([(len(self.outbox), oldest)], 1, ["pending", "oldest"])
        if statement == "DELETE FROM outbox WHERE id = ANY(%s)":
            doomed = set(_param(params, 0))
            before = len(self.outbox)
            self.outbox = [r for r in self.outbox if r["id"] not in doomed]
            return Result([], before - len(self.outbox))
        if statement.startswith("INSERT INTO reconcile_runs "):
            return self._insert_run(statement, params)
        match = _SELECT.fullmatch(statement)
        if match is not None:
            return self._select(match["table"], [c.strip() for c in match["columns"].split(",")],
                                match["rest"].strip(), params, statement)
        raise _unknown(statement)

    def _select(self, table: str, columns: list[str], rest: str, params: Sequence[Any] | None,
                statement: str) -> Result:
        rows: list[dict[str, Any]]
        if table == "products" and rest == "":
            rows = [self.products[i] for i in sorted(self.products)]
        elif table == "products" and rest == "WHERE id = ANY(%s)":
            wanted = {int(i) for i in _param(params, 0)}
            rows = [self.products[i] for i in sorted(self.products) if i in wanted]
        elif table == "outbox" and rest == "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED":
            rows = self.outbox[: int(_param(params, 0))]
        elif table == "reconcile_runs" and rest == "ORDER BY id DESC LIMIT 1":
            rows = self.reconcile_runs[-1:]
        else:
            raise _unknown(statement)
        known = {"products": PRODUCT_COLUMNS, "outbox": OUTBOX_COLUMNS,
                 "reconcile_runs": RECONCILE_COLUMNS}[table]
        missing = [c for c in columns if c not in known]
        if missing:
            raise NotImplementedError(f"the fake table {table} has no column(s) {missing}: {statement!r}")
        return Result([tuple(row[c] for c in columns) for row in rows], len(rows), columns)

    def _insert_run(self, statement: str, params: Sequence[Any] | None) -> Result:
        match = re.fullmatch(r"INSERT INTO reconcile_runs \((?P<columns>[\w, ]+)\) VALUES \(.*\)", statement)
        if match is None or params is None:
            raise _unknown(statement)
        columns = [c.strip() for c in match["columns"].split(",")]
        run: dict[str, Any] = {"id": len(self.reconcile_runs) + 1, "finished_at": self.clock.now(),
                               "repaired": 0}
        run.update(zip(columns, params, strict=True))
        self.reconcile_runs.append(run)
        return Result([], 1)


def _money(value: float | Decimal) -> Decimal:
    """A price as ``numeric(12, 2)`` stores it."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _param(params: Sequence[Any] | None, position: int) -> Any:
    if params is None or len(params) <= position:
        raise NotImplementedError(f"the statement needs parameter {position}, got {params!r}")
    return params[position]


def _unknown(statement: str) -> NotImplementedError:
    return NotImplementedError(
        f"FakeProductsDatabase does not understand {statement!r}; teach refarch/fakes/products.py "
        "the new statement (and keep the fake's answer what Postgres would say)"
    )


class FakeCursor:
    """A (named, server-side) cursor: ``execute`` then iterate."""

    def __init__(self, db: FakeProductsDatabase) -> None:
        self._db = db
        self._result = Result([])
        #: Rows per round trip (kept for the caller; the fake has no round trips).
        self.itersize = 2_000

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def execute(self, query: str, params: Sequence[Any] | None = None) -> FakeCursor:
        """Run a statement; its rows are what iterating the cursor yields."""
        self._result = self._db.execute(query, params)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every row of the last statement."""
        return self._result.fetchall()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._result)


class FakeConnection:
    """What the pipeline uses of an autocommit ``psycopg.Connection``."""

    def __init__(self, db: FakeProductsDatabase) -> None:
        self._db = db
        self.closed = False

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (statements then fail)."""
        self.closed = True

    def _open(self) -> FakeProductsDatabase:
        if self.closed:
            raise psycopg.OperationalError("the connection is closed")
        return self._db

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Result:
        """Run a statement (see :meth:`FakeProductsDatabase.execute`)."""
        return self._open().execute(query, params)

    def cursor(self, name: str | None = None) -> FakeCursor:
        """A cursor (``name`` makes a server-side cursor in psycopg; the same here)."""
        return FakeCursor(self._open())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction block (a no-op: the fake has no concurrent writers)."""
        self._open()
        yield

    def notifies(self, *, timeout: float | None = None, stop_after: int | None = None) -> Iterator[Any]:
        """No notifications ever arrive: sleeps ``timeout`` on the database's clock."""
        self._open().clock.sleep(timeout or 0.0)
        return iter(())
