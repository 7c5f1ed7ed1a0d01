"""The fake products database answers every refarch.db.products function the pipeline calls,
and behaves like an autocommit psycopg connection where the pipeline can tell.

The first tests keep the fake and db/products.py from drifting apart: the pipeline's calls into
refarch.db.products are read from its source (:mod:`ast`), and each must have an exercise here
that runs the real function against the fake and checks its answer; every statement constant
db/products.py names must be one the fake understands.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.rows import class_row, dict_row

from refarch.db import products
from refarch.db.products import OutboxRow, OutboxStats, ReconcileRun
from refarch.domain.product import StoredProduct
from refarch.fakes import FakeClock, FakeProductsDatabase

PIPELINE = Path(__file__).resolve().parents[3] / "refarch" / "pipeline"
DB_MODULE = "refarch.db.products"


def _db_functions() -> set[str]:
    return {name for name, value in vars(products).items()
            if inspect.isfunction(value) and value.__module__ == DB_MODULE}


def pipeline_calls() -> set[str]:
    """The functions of refarch.db.products that the modules of refarch/pipeline use."""
    functions = _db_functions()
    used: set[str] = set()
    for path in sorted(PIPELINE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases: set[str] = set()  # names the module is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "refarch.db":
                aliases.update(a.asname or a.name for a in node.names if a.name == "products")
            elif isinstance(node, ast.ImportFrom) and node.module == DB_MODULE:
                used.update(a.name for a in node.names if a.name in functions)
            elif isinstance(node, ast.Import):
                aliases.update(a.asname for a in node.names if a.name == DB_MODULE and a.asname)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr in functions):
                used.add(node.attr)
    return used


def _stored(db: FakeProductsDatabase, product_id: int) -> StoredProduct:
    """The fake's row as the StoredProduct Postgres would return."""
    row = db.products[product_id]
    return StoredProduct(**{f.name: row[f.name] for f in fields(StoredProduct)})


def _advance(db: FakeProductsDatabase, seconds: float) -> None:
    assert isinstance(db.clock, FakeClock)
    db.clock.advance(seconds)


@pytest.fixture
def db() -> FakeProductsDatabase:
    """Three products inserted a second apart, one changed, one deleted: six outbox rows."""
    db = FakeProductsDatabase()
    for sku in ("A", "B", "C"):
        db.insert(sku)
        _advance(db, 1)
    db.update(1, description="changed")
    _advance(db, 1)
    db.update(2, last_updated=db.clock.now())  # version only: no outbox row
    db.delete(3)
    assert len(db.outbox) == 5
    return db


# -- one exercise per function of db/products.py the pipeline calls ------------------------------


def _get_products(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.get_products(conn, [1, 2, 3]) == {1: _stored(db, 1), 2: _stored(db, 2)}


def _iter_products(conn: Any, db: FakeProductsDatabase) -> None:
    assert list(products.iter_products(conn)) == [_stored(db, 1), _stored(db, 2)]


def _recently_changed(conn: Any, db: FakeProductsDatabase) -> None:
    # product 2 changed last, product 1 before it
    assert products.recently_changed(conn, 1) == [_stored(db, 2)]
    assert [p.id for p in products.recently_changed(conn, 5)] == [2, 1]


def _search_versions(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.search_versions(conn, [1, 2, 3]) == {
        1: db.products[1]["search_version"], 2: db.products[2]["search_version"]}


def _count_products(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.count_products(conn) == 2


def _claim_outbox(conn: Any, db: FakeProductsDatabase) -> None:
    with conn.transaction():
        claimed = products.claim_outbox(conn, 2)
    assert claimed == [OutboxRow(**row) for row in db.outbox[:2]]


def _delete_outbox(conn: Any, db: FakeProductsDatabase) -> None:
    first, second = db.outbox[0]["id"], db.outbox[1]["id"]
    assert products.delete_outbox(conn, [first, second, 999]) == 2
    assert [row["id"] for row in db.outbox] == [3, 4, 5]


def _outbox_stats(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.outbox_stats(conn) == OutboxStats(5, db.outbox[0]["created_at"])
    db.outbox.clear()
    assert products.outbox_stats(conn) == OutboxStats(0, None)


def _outbox_high_water(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.outbox_high_water(conn) == 5
    db.outbox.clear()
    assert products.outbox_high_water(conn) == 0


def _outbox_pending_through(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.outbox_pending_through(conn, 3) == 3
    assert products.outbox_pending_through(conn, 0) == 0


def _record_reconcile_run(conn: Any, db: FakeProductsDatabase) -> None:
    started = db.clock.now()
    _advance(db, 3)
    products.record_reconcile_run(conn, started_at=started, products=2, vectors=3, missing=1,
                                  stale=0, orphaned=2, repaired=3)
    assert db.reconcile_runs == [{"id": 1, "started_at": started, "finished_at": db.clock.now(),
                                  "products": 2, "vectors": 3, "missing": 1, "stale": 0,
                                  "orphaned": 2, "repaired": 3}]


def _last_reconcile_run(conn: Any, db: FakeProductsDatabase) -> None:
    assert products.last_reconcile_run(conn) is None
    for missing in (1, 2):
        products.record_reconcile_run(conn, started_at=db.clock.now(), products=2, vectors=2,
                                      missing=missing, stale=0, orphaned=0, repaired=0)
        _advance(db, 1)
    assert products.last_reconcile_run(conn) == ReconcileRun(
        db.clock.now() - timedelta(seconds=1), 2, 2, 2, 0, 0, 0)


# conn: a FakeConnection standing in for the psycopg.Connection the functions are typed with.
EXERCISES: dict[str, Callable[[Any, FakeProductsDatabase], None]] = {
    "get_products": _get_products,
    "iter_products": _iter_products,
    "recently_changed": _recently_changed,
    "search_versions": _search_versions,
    "count_products": _count_products,
    "claim_outbox": _claim_outbox,
    "delete_outbox": _delete_outbox,
    "outbox_stats": _outbox_stats,
    "outbox_high_water": _outbox_high_water,
    "outbox_pending_through": _outbox_pending_through,
    "record_reconcile_run": _record_reconcile_run,
    "last_reconcile_run": _last_reconcile_run,
}


def test_the_source_scan_finds_the_pipeline_s_calls_into_db_products() -> None:
    # outbox.py calls it as products.claim_outbox, indexer.py products.get_products, ...
    assert {"claim_outbox", "get_products", "iter_products", "record_reconcile_run"} <= pipeline_calls()
    assert pipeline_calls() <= _db_functions()


def test_every_db_products_function_the_pipeline_calls_has_an_exercise_on_the_fake() -> None:
    missing = sorted(pipeline_calls() - set(EXERCISES))
    assert missing == [], (
        f"the pipeline calls refarch.db.products.{missing} but no exercise here runs it against "
        "the fake: add one to EXERCISES (and teach refarch/fakes/products.py its statement)"
    )


@pytest.mark.parametrize("function", sorted(EXERCISES))
def test_the_fake_answers_the_pipeline_s_db_function(function: str, db: FakeProductsDatabase) -> None:
    with db.connect() as conn:
        EXERCISES[function](conn, db)


def test_every_statement_db_products_names_is_understood_by_the_fake() -> None:
    named = {name: value for name, value in vars(products).items()
             if name.isupper() and isinstance(value, str)
             and value.split(" ", 1)[0] in ("SELECT", "INSERT", "UPDATE", "DELETE")}
    assert "CLAIM_OUTBOX" in named and "PRODUCTS_BY_IDS" in named
    db = FakeProductsDatabase()
    assert [name for name, statement in sorted(named.items()) if not db.understands(statement)] == []


# -- how the fake behaves like psycopg ----------------------------------------------------------


def test_rows_take_the_shape_of_the_cursor_s_row_factory(db: FakeProductsDatabase) -> None:
    with db.connect() as conn:
        assert conn.execute(products.COUNT_PRODUCTS).fetchone() == (2,)  # tuples by default
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(products.SEARCH_VERSIONS, ([2],))
            assert cur.fetchall() == [{"id": 2, "search_version": db.products[2]["search_version"]}]
        with conn.cursor(row_factory=class_row(StoredProduct)) as cur:
            cur.execute(products.PRODUCTS_BY_IDS, ([1, 2],))
            assert cur.fetchone() == _stored(db, 1)
            assert list(cur) == [_stored(db, 2)]  # iteration goes on from where fetching stopped
            assert cur.fetchone() is None and cur.rowcount == 2


def test_a_statement_without_rows_has_nothing_to_fetch(db: FakeProductsDatabase) -> None:
    with db.connect() as conn:
        cur = conn.execute(products.DELETE_OUTBOX, ([1],))
        assert cur.rowcount == 1
        with pytest.raises(psycopg.ProgrammingError, match="didn't produce a result"):
            cur.fetchone()
        with pytest.raises(psycopg.ProgrammingError, match="no result"):
            conn.cursor().fetchall()


def test_a_named_cursor_streams_only_inside_a_transaction(db: FakeProductsDatabase) -> None:
    with db.connect() as conn:
        with pytest.raises(pg_errors.NoActiveSqlTransaction):
            conn.cursor(name="outside").execute(products.ALL_PRODUCTS)
        with conn.transaction(), conn.cursor(name="inside") as cur:
            cur.execute(products.ALL_PRODUCTS)
            assert [row[0] for row in cur] == [1, 2]
        with pytest.raises(psycopg.InterfaceError):
            cur.fetchall()  # closed with its block


def test_a_transaction_left_by_an_exception_undoes_its_statements(db: FakeProductsDatabase) -> None:
    outbox = [dict(row) for row in db.outbox]
    conn: Any  # a FakeConnection standing in for a psycopg.Connection
    with db.connect() as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            assert products.delete_outbox(conn, [1, 4]) == 2
            products.record_reconcile_run(conn, started_at=db.clock.now(), products=0, vectors=0,
                                          missing=0, stale=0, orphaned=0, repaired=0)
            raise RuntimeError("the queue send failed")
        assert db.outbox == outbox and db.reconcile_runs == []

        with conn.transaction():  # a failed savepoint undoes only its own writes
            products.delete_outbox(conn, [1])
            with pytest.raises(RuntimeError), conn.transaction():
                products.delete_outbox(conn, [2])
                raise RuntimeError
        assert [row["id"] for row in db.outbox] == [2, 3, 4, 5]

        with pytest.raises(RuntimeError), conn.transaction():  # a released savepoint rolls back with it
            with conn.transaction():
                products.delete_outbox(conn, [3])
            raise RuntimeError
        assert [row["id"] for row in db.outbox] == [2, 3, 4, 5]

        products.delete_outbox(conn, [2])  # autocommit: at once, for good
        assert [row["id"] for row in db.outbox] == [3, 4, 5]


def test_a_statement_the_fake_does_not_know_raises_naming_it(db: FakeProductsDatabase) -> None:
    statement = "SELECT id FROM products WHERE sku = %s"
    assert not db.understands(statement) and db.understands("LISTEN refarch_outbox")
    with db.connect() as conn, pytest.raises(NotImplementedError, match="WHERE sku = %s"):
        conn.execute(statement, ("A",))


def test_a_closed_connection_or_a_database_that_went_away_fails_every_statement(
        db: FakeProductsDatabase) -> None:
    conn = db.connect()
    db.down = True
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    db.down = False
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
