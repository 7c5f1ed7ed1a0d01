"""An in-memory stand-in for the Postgres side of the pipeline: products, outbox, reconcile runs.

The indexer, the relay and reconcile take a psycopg connection (or a function that opens one)
and read and write through :mod:`refarch.db.products`. :meth:`FakeProductsDatabase.connect`
returns a :class:`FakeConnection` that answers the statements that module names as constants
(``PRODUCTS_BY_IDS``, ``CLAIM_OUTBOX``, ... imported from it, so a change of wording there is
followed here), from Python dicts, so the pipeline's logic runs in a unit test without a server.
Writes to products go through Python methods that do what the migrations' triggers do:

* :meth:`~FakeProductsDatabase.insert` stamps ``version`` and ``search_version`` from one
  global sequence and captures an ``upsert`` in the outbox;
* :meth:`~FakeProductsDatabase.update` bumps ``version`` on any change, and ``search_version``
  (capturing an ``upsert``) only when an indexed column (sku, name, category, description,
  price) changed;
* :meth:`~FakeProductsDatabase.delete` captures a ``delete`` with a fresh version.

Besides those statements the connection understands ``SELECT 1`` (the indexer's health check),
``LISTEN``/``UNLISTEN`` (no-ops) and ``notifies`` (no notifications: it sleeps the timeout on
the database's clock). Anything else raises ``NotImplementedError`` naming the statement: a fake
that guessed would hide a change.

It behaves like an autocommit psycopg connection where the pipeline can tell:

* rows go through the cursor's ``row_factory`` (psycopg's own ``tuple_row``, ``dict_row``,
  ``class_row(...)``, ...; the column names are the ones the statement selects);
* a named (server-side) cursor only runs inside ``transaction()``, as ``DECLARE CURSOR`` does;
* ``transaction()`` blocks nest (savepoints); one left by an exception undoes the writes its
  statements made (deleted outbox rows, recorded runs). Nothing is locked: nothing here runs
  concurrently.

Setting ``down`` makes ``connect`` and every statement raise ``psycopg.OperationalError``, as a
database that went away does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import ExecStatus
from psycopg.rows import tuple_row

from refarch.clock import Clock
from refarch.db import products as statements
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

#: A statement's parameters, as psycopg takes them.
Params = Sequence[Any] | Mapping[str, Any] | None
#: A psycopg row factory: cursor -> (values -> row).
RowFactory = Callable[[Any], Callable[[Sequence[Any]], Any]]

_SELECT_LIST = re.compile(r"SELECT (?P<columns>[\w, ]+?) FROM ")
_INSERT_LIST = re.compile(r"INSERT INTO \w+ \((?P<columns>[\w, ]+)\) VALUES ")


@dataclass
class Answer:
    """What a statement gives: column names (None: it returns no rows), the rows, ``rowcount``,
    and how to take its writes back should its transaction roll back."""

    names: tuple[str, ...] | None
    rows: list[tuple[Any, ...]]
    rowcount: int
    undo: Callable[[], None] | None = None


def _normalized(statement: str) -> str:
    return " ".join(statement.split())


def _listed(pattern: re.Pattern[str], statement: str, table: str, known: Sequence[str]) -> tuple[str, ...]:
    """The column list of ``statement`` (matched by ``pattern``), each checked against ``known``."""
    match = pattern.match(statement)
    if match is None:
        raise _unknown(statement)
    columns = tuple(c.strip() for c in match["columns"].split(","))
    missing = [c for c in columns if c not in known]
    if missing:
        raise NotImplementedError(f"the fake table {table} has no column(s) {missing}: {statement!r}")
    return columns


def _selected(statement: str, table: str, known: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Answer:
    """``rows`` projected on the columns ``statement`` selects."""
    names = _listed(_SELECT_LIST, statement, table, known)
    return Answer(names, [tuple(row[c] for c in names) for row in rows], len(rows))


def _one(name: str, value: Any) -> Answer:
    """One row of one value (``count(*)`` and the like; Postgres names the column after the function)."""
    return Answer((name,), [(value,)], 1)


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
        self._run_ids = 0
        self._version = 0
        handlers: dict[str, Callable[[str, Params], Answer]] = {
            "SELECT 1": lambda _statement, _params: Answer(("?column?",), [(1,)], 1),
            statements.PRODUCTS_BY_IDS: self._products_by_ids,
            statements.ALL_PRODUCTS: self._all_products,
            statements.RECENTLY_CHANGED: self._recently_changed,
            statements.SEARCH_VERSIONS: self._products_by_ids,
            statements.COUNT_PRODUCTS: lambda _statement, _params: _one("count", len(self.products)),
            statements.CLAIM_OUTBOX: self._claim_outbox,
            statements.DELETE_OUTBOX: self._delete_outbox,
            statements.OUTBOX_STATS: self._outbox_stats,
            statements.OUTBOX_HIGH_WATER: lambda _statement, _params: _one(
                "coalesce", max((r["id"] for r in self.outbox), default=0)),
            statements.OUTBOX_PENDING_THROUGH: self._outbox_pending_through,
            statements.INSERT_RECONCILE_RUN: self._insert_run,
            statements.LAST_RECONCILE_RUN: lambda statement, _params: _selected(
                statement, "reconcile_runs", RECONCILE_COLUMNS, self.reconcile_runs[-1:]),
        }
        #: The statements the fake answers (whitespace-normalized text -> handler).
        self._handlers = {_normalized(text): handler for text, handler in handlers.items()}

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

    def understands(self, statement: str) -> bool:
        """Whether :meth:`execute` answers ``statement`` (rather than raising NotImplementedError)."""
        normalized = _normalized(statement)
        return normalized in self._handlers or _is_listen(normalized)

    def execute(self, query: str, params: Params = None) -> Answer:
        """Run one of the statements the pipeline issues (see the module docstring)."""
        self.check_up()
        statement = _normalized(query)
        if _is_listen(statement):
            return Answer(None, [], 0)
        handler = self._handlers.get(statement)
        if handler is None:
            raise _unknown(statement)
        return handler(statement, params)

    def _products_by_ids(self, statement: str, params: Params) -> Answer:
        wanted = {int(i) for i in _param(params, 0)}
        rows = [self.products[i] for i in sorted(self.products) if i in wanted]
        return _selected(statement, "products", PRODUCT_COLUMNS, rows)

    def _all_products(self, statement: str, params: Params) -> Answer:
        rows = [self.products[i] for i in sorted(self.products)]
        return _selected(statement, "products", PRODUCT_COLUMNS, rows)

    def _recently_changed(self, statement: str, params: Params) -> Answer:
        newest = sorted(self.products.values(), key=lambda row: row["updated_at"], reverse=True)
        return _selected(statement, "products", PRODUCT_COLUMNS, newest[: int(_param(params, 0))])

    def _claim_outbox(self, statement: str, params: Params) -> Answer:
        oldest = sorted(self.outbox, key=lambda row: row["id"])[: int(_param(params, 0))]
        return _selected(statement, "outbox", OUTBOX_COLUMNS, oldest)

    def _delete_outbox(self, statement: str, params: Params) -> Answer:
        doomed = {int(i) for i in _param(params, 0)}
        deleted = [r for r in self.outbox if r["id"] in doomed]
        self.outbox = [r for r in self.outbox if r["id"] not in doomed]

        def undo() -> None:
            self.outbox = sorted(self.outbox + deleted, key=lambda row: row["id"])

        return Answer(None, [], len(deleted), undo)

    def _outbox_stats(self, statement: str, params: Params) -> Answer:
        oldest = min((r["created_at"] for r in self.outbox), default=None)
        return Answer(("pending", "oldest"), [(len(self.outbox), oldest)], 1)

    def _outbox_pending_through(self, statement: str, params: Params) -> Answer:
        last_id = int(_param(params, 0))
        return _one("count", sum(1 for r in self.outbox if r["id"] <= last_id))

    def _insert_run(self, statement: str, params: Params) -> Answer:
        columns = _listed(_INSERT_LIST, statement, "reconcile_runs", RECONCILE_COLUMNS)
        if not isinstance(params, Sequence) or len(params) != len(columns):
            raise NotImplementedError(f"{statement!r} needs {len(columns)} parameters, got {params!r}")
        self._run_ids += 1
        run: dict[str, Any] = {"id": self._run_ids, "finished_at": self.clock.now(), "repaired": 0}
        run.update(zip(columns, params, strict=True))
        self.reconcile_runs.append(run)

        def undo() -> None:
            self.reconcile_runs.remove(run)

        return Answer(None, [], 1, undo)


def _money(value: float | Decimal) -> Decimal:
    """A price as ``numeric(12, 2)`` stores it."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _is_listen(statement: str) -> bool:
    return re.fullmatch(r"(UN)?LISTEN \w+", statement) is not None


def _param(params: Params, position: int) -> Any:
    if not isinstance(params, Sequence) or len(params) <= position:
        raise NotImplementedError(f"the statement needs parameter {position}, got {params!r}")
    return params[position]


def _unknown(statement: str) -> NotImplementedError:
    return NotImplementedError(
        f"FakeProductsDatabase does not understand {statement!r}; teach refarch/fakes/products.py "
        "the new statement (and keep the fake's answer what Postgres would say)"
    )


class _Result:
    """The part of psycopg's ``PGresult`` its row factories read: the status and column names."""

    def __init__(self, names: tuple[str, ...] | None) -> None:
        self._names = names or ()
        self.status = ExecStatus.TUPLES_OK if names is not None else ExecStatus.COMMAND_OK
        self.nfields = len(self._names)

    def fname(self, column: int) -> bytes:
        return self._names[column].encode()


class FakeCursor:
    """A cursor (client-side, or server-side when named): ``execute``, then fetch or iterate."""

    #: With :attr:`pgresult`, what psycopg's row factories read to name the columns.
    _encoding = "utf-8"

    def __init__(self, conn: FakeConnection, name: str | None = None,
                 row_factory: RowFactory | None = None) -> None:
        self._conn = conn
        #: The server-side cursor's name (None: a client-side cursor).
        self.name = name
        self.row_factory: RowFactory = row_factory if row_factory is not None else conn.row_factory
        #: Rows per round trip of a named cursor (kept for the caller; the fake has no round trips).
        self.itersize = 100
        #: Rows ``fetchmany()`` returns when given no size.
        self.arraysize = 1
        self.rowcount = -1
        self.closed = False
        #: The last statement's result (None before the first).
        self.pgresult: _Result | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._position = 0
        self._make: Callable[[Sequence[Any]], Any] = tuple

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the cursor (statements and fetches then fail)."""
        self.closed = True

    def execute(self, query: str, params: Params = None) -> FakeCursor:
        """Run a statement; its rows are what fetching or iterating the cursor yields."""
        if self.closed:
            raise psycopg.InterfaceError("the cursor is closed")
        if self.name is not None and not self._conn.in_transaction:
            # Postgres: a cursor without hold lives in a transaction block, and autocommit has none.
            raise pg_errors.NoActiveSqlTransaction("DECLARE CURSOR can only be used in transaction blocks")
        answer = self._conn.run(query, params)
        if self.name is not None and answer.names is None:
            raise psycopg.ProgrammingError(f"a named cursor only runs queries that return rows: {query!r}")
        self.pgresult = _Result(answer.names)
        self.rowcount = answer.rowcount
        self._rows, self._position = answer.rows, 0
        self._make = self.row_factory(self)
        return self

    def _fetch(self, size: int | None) -> list[Any]:
        if self.closed:
            raise psycopg.InterfaceError("the cursor is closed")
        if self.pgresult is None:
            raise psycopg.ProgrammingError("no result available")
        if self.pgresult.status != ExecStatus.TUPLES_OK:
            raise psycopg.ProgrammingError("the last operation didn't produce a result")
        end = len(self._rows) if size is None else self._position + size
        taken = self._rows[self._position : end]
        self._position += len(taken)
        return [self._make(values) for values in taken]

    def fetchone(self) -> Any:
        """The next row, or None."""
        rows = self._fetch(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int = 0) -> list[Any]:
        """The next ``size`` rows (:attr:`arraysize` when 0)."""
        return self._fetch(size or self.arraysize)

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        return self._fetch(None)

    def __iter__(self) -> Iterator[Any]:
        while rows := self._fetch(1):
            yield rows[0]


class FakeConnection:
    """What the pipeline uses of an autocommit ``psycopg.Connection`` (see the module docstring)."""

    def __init__(self, db: FakeProductsDatabase) -> None:
        self._db = db
        self.closed = False
        self.autocommit = True
        #: The row factory of cursors opened without one (and of ``execute``).
        self.row_factory: RowFactory = tuple_row
        # One list per open transaction block, innermost last: how to undo its writes.
        self._undo: list[list[Callable[[], None]]] = []

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

    @property
    def in_transaction(self) -> bool:
        """Whether a :meth:`transaction` block is open."""
        return bool(self._undo)

    def run(self, query: str, params: Params = None) -> Answer:
        """Answer one statement (what :meth:`FakeCursor.execute` sends), noting how to undo its writes."""
        answer = self._open().execute(query, params)
        if answer.undo is not None and self._undo:
            self._undo[-1].append(answer.undo)
        return answer

    def execute(self, query: str, params: Params = None) -> FakeCursor:
        """Run a statement on a new cursor and return it, as psycopg does."""
        return self.cursor().execute(query, params)

    def cursor(self, name: str | None = None, *, row_factory: RowFactory | None = None) -> FakeCursor:
        """A cursor; ``name`` makes it a server-side one; ``row_factory`` shapes its rows."""
        self._open()
        return FakeCursor(self, name or None, row_factory)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction block (a savepoint when nested): left by an exception, it undoes the
        writes its statements made."""
        self._open()
        self._undo.append([])
        try:
            yield
        except BaseException:
            for undo in reversed(self._undo.pop()):
                undo()
            raise
        done = self._undo.pop()
        if self._undo:  # a savepoint: its writes now belong to the enclosing transaction
            self._undo[-1].extend(done)

    def notifies(self, *, timeout: float | None = None, stop_after: int | None = None) -> Iterator[Any]:
        """No notifications ever arrive: sleeps ``timeout`` on the database's clock."""
        self._open().clock.sleep(timeout or 0.0)
        return iter(())
