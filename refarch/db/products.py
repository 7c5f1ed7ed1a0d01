"""Every SQL statement over ``products``, the ``outbox`` and ``reconcile_runs``, in one module.

* **Product records.** A product is read as a :class:`~refarch.domain.product.StoredProduct`
  with one column list, :data:`COLUMNS` (the record's fields), whoever reads it: the editor
  (:func:`get_product`), the indexer and search (:func:`get_products`), reconcile
  (:func:`iter_products`), the freshness probe (:func:`recently_changed`).
* **The editor's changes** (:func:`insert_product`, :func:`update_product`,
  :func:`delete_product`). Every change is validated first by
  :mod:`refarch.domain.validation` (the rules the loaders apply too), then written in one
  transaction, so a change either lands whole or not at all. The database triggers
  (migration 0002) bump the row's ``version`` and write the outbox row in that same
  transaction, which is how the change reaches the index. Validation errors are
  :class:`~refarch.errors.FieldValidationError`\\ s naming the field (``sku``, ``name``,
  ``description``, ``category``, ``price``), so a form can show each message next to its
  field. A duplicate SKU is caught from the unique constraint itself (no check-then-insert
  race) and reported on the ``sku`` field.
* **The outbox** the relay consumes (:func:`claim_outbox`, :func:`delete_outbox`,
  :func:`outbox_stats`; the concept is explained in :mod:`refarch.pipeline.outbox`).
* **Reconcile runs** (:func:`record_reconcile_run`, :func:`last_reconcile_run`).

Bulk loads are the exception: their COPY and merge statements stay in :mod:`refarch.db.merge`,
where the staging table they share is created, because each only makes sense as a step of
that algorithm.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import class_row

from refarch.domain.product import StoredProduct
from refarch.domain.validation import clean_product, validate_changes
from refarch.errors import (
    DatabaseError,
    EditConflictError,
    FieldValidationError,
    ProductNotFoundError,
    RefarchError,
)

#: The columns every product read selects: the fields of StoredProduct, in order.
COLUMNS: Final = ", ".join(field.name for field in fields(StoredProduct))
#: Rows as StoredProducts (the column names are the field names).
_AS_PRODUCT = class_row(StoredProduct)
#: Rows a server-side cursor fetches per round trip when streaming every product.
STREAM_CHUNK = 5_000

# The statements the sync pipeline issues are named constants (``PRODUCTS_BY_IDS`` ...):
# refarch.fakes.products answers exactly these, so the fake follows any change made here.


class _Unset:
    """Marks a field an update leaves unchanged (``None`` is a real value for category)."""

    def __repr__(self) -> str:
        return "UNSET"


#: Pass for a field :func:`update_product` should leave as it is.
UNSET: Final = _Unset()


# --- product reads ----------------------------------------------------------------------------


def _gone(product_id: int, hint: str = "it may have been deleted") -> ProductNotFoundError:
    return ProductNotFoundError(f"Product {product_id} does not exist ({hint})")


def get_product(conn: psycopg.Connection[Any], product_id: int) -> StoredProduct:
    """Return the product with ``product_id``; raise ProductNotFoundError if there is none."""
    with conn.cursor(row_factory=_AS_PRODUCT) as cur:
        product = cur.execute(f"SELECT {COLUMNS} FROM products WHERE id = %s", (product_id,)).fetchone()
    if product is None:
        raise _gone(product_id)
    return product


#: The products with the given ids (``%s``: a list).
PRODUCTS_BY_IDS: Final = f"SELECT {COLUMNS} FROM products WHERE id = ANY(%s)"


def get_products(conn: psycopg.Connection[Any], product_ids: Sequence[int]) -> dict[int, StoredProduct]:
    """The products among ``product_ids`` that exist, keyed by id (one parameterized query)."""
    if not product_ids:
        return {}
    with conn.cursor(row_factory=_AS_PRODUCT) as cur:
        cur.execute(PRODUCTS_BY_IDS, (list(product_ids),))
        return {product.id: product for product in cur.fetchall()}


def find_by_sku(conn: psycopg.Connection[Any], sku: str) -> StoredProduct | None:
    """Return the product with this SKU, or ``None``."""
    with conn.cursor(row_factory=_AS_PRODUCT) as cur:
        return cur.execute(f"SELECT {COLUMNS} FROM products WHERE sku = %s", (sku.strip(),)).fetchone()


#: Every product.
ALL_PRODUCTS: Final = f"SELECT {COLUMNS} FROM products"


def iter_products(conn: psycopg.Connection[Any]) -> Iterator[StoredProduct]:
    """Every product, streamed by a server-side cursor (bounded memory at any catalog size).

    The cursor lives in a transaction (a savepoint inside the caller's) that ends with the
    iteration: consume it fully, or close the iterator.
    """
    name = f"products_{uuid.uuid4().hex[:8]}"
    with conn.transaction(), conn.cursor(name=name, row_factory=_AS_PRODUCT) as cur:
        cur.itersize = STREAM_CHUNK
        cur.execute(ALL_PRODUCTS)
        yield from cur


#: The most recently changed products, newest first (``%s``: how many).
RECENTLY_CHANGED: Final = f"SELECT {COLUMNS} FROM products ORDER BY updated_at DESC LIMIT %s"


def recently_changed(conn: psycopg.Connection[Any], limit: int) -> list[StoredProduct]:
    """The ``limit`` products changed most recently in Postgres (by ``updated_at``), newest first."""
    with conn.cursor(row_factory=_AS_PRODUCT) as cur:
        cur.execute(RECENTLY_CHANGED, (limit,))
        return cur.fetchall()


#: ``(id, search_version)`` of the products with the given ids (``%s``: a list).
SEARCH_VERSIONS: Final = "SELECT id, search_version FROM products WHERE id = ANY(%s)"


def search_versions(conn: psycopg.Connection[Any], product_ids: Sequence[int]) -> dict[int, int]:
    """``{id: search_version}`` of the products among ``product_ids`` that exist."""
    if not product_ids:
        return {}
    rows = conn.execute(SEARCH_VERSIONS, (list(product_ids),)).fetchall()
    return {int(pid): int(version) for pid, version in rows}


#: How many products there are.
COUNT_PRODUCTS: Final = "SELECT count(*) FROM products"


def count_products(conn: psycopg.Connection[Any]) -> int:
    """How many products the catalog has."""
    row = conn.execute(COUNT_PRODUCTS).fetchone()
    assert row is not None
    return int(row[0])


def list_categories(conn: psycopg.Connection[Any]) -> list[str]:
    """Every category in use, sorted (for the search filter and the editor)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT category FROM products WHERE category IS NOT NULL ORDER BY category"
        )
        return [row[0] for row in cur.fetchall()]


def price_range(conn: psycopg.Connection[Any]) -> tuple[Decimal, Decimal]:
    """The lowest and highest price in the catalog (``(0, 0)`` when it is empty)."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(min(price), 0), coalesce(max(price), 0) FROM products")
        low, high = cur.fetchone()  # type: ignore[misc]
    return Decimal(low), Decimal(high)


# --- the editor's writes ----------------------------------------------------------------------


def _unique_violation(exc: pg_errors.UniqueViolation, sku: str) -> RefarchError:
    constraint = exc.diag.constraint_name or ""
    if "sku" in constraint:
        return FieldValidationError("sku", f"SKU {sku!r} is already used by another product")
    return DatabaseError(f"Insert violated the unique constraint {constraint!r}: {exc}")


def insert_product(
    conn: psycopg.Connection[Any],
    *,
    sku: Any,
    name: Any,
    description: Any = "",
    category: Any = None,
    price: Any,
) -> StoredProduct:
    """Validate and insert one product in its own transaction; return the stored row.

    Raises FieldValidationError naming the first invalid field (a taken SKU included).
    """
    product = clean_product(
        sku=sku, name=name, description=description, category=category, price=price
    )
    try:
        with conn.transaction(), conn.cursor(row_factory=_AS_PRODUCT) as cur:
            stored = cur.execute(
                "INSERT INTO products (sku, name, description, category, price, last_updated)"
                " VALUES (%s, %s, %s, %s, %s, now())"
                f" RETURNING {COLUMNS}",
                (product.sku, product.name, product.description, product.category, product.price),
            ).fetchone()
    except pg_errors.UniqueViolation as exc:
        raise _unique_violation(exc, product.sku) from None
    assert stored is not None
    return stored


def _locked(cur: psycopg.Cursor[StoredProduct], product_id: int, hint: str) -> StoredProduct:
    """The row of ``product_id``, locked until the transaction ends."""
    current = cur.execute(
        f"SELECT {COLUMNS} FROM products WHERE id = %s FOR UPDATE", (product_id,)
    ).fetchone()
    if current is None:
        raise _gone(product_id, hint)
    return current


def update_product(
    conn: psycopg.Connection[Any],
    product_id: int,
    *,
    name: Any = UNSET,
    description: Any = UNSET,
    category: Any = UNSET,
    price: Any = UNSET,
    expected_version: int | None = None,
) -> StoredProduct:
    """Validate and apply the given changes to one product in one transaction.

    Fields left as :data:`UNSET` keep their value. With ``expected_version``, the update only
    applies if the row still has that version (someone else's edit in between raises
    EditConflictError instead of being overwritten). An update that changes nothing writes
    nothing (no new version, no re-index) and returns the row as it is.
    """
    given = {"name": name, "description": description, "category": category, "price": price}
    changes = validate_changes({k: v for k, v in given.items() if v is not UNSET})
    with conn.transaction(), conn.cursor(row_factory=_AS_PRODUCT) as cur:
        current = _locked(cur, product_id, "it may have been deleted")
        if expected_version is not None and current.version != expected_version:
            raise EditConflictError(
                f"Product {current.sku} was changed by someone else (version {expected_version}"
                f" -> {current.version}); reload it and edit again"
            )
        changed = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not changed:
            return current
        assignments = ", ".join(f"{column} = %({column})s" for column in changed)
        updated = cur.execute(
            f"UPDATE products SET {assignments}, last_updated = now(), updated_at = now()"
            f" WHERE id = %(id)s RETURNING {COLUMNS}",
            {**changed, "id": product_id},
        ).fetchone()
    assert updated is not None
    return updated


def delete_product(
    conn: psycopg.Connection[Any], product_id: int, *, expected_version: int | None = None
) -> StoredProduct:
    """Delete one product in its own transaction; return the row as it was.

    Raises ProductNotFoundError if it is already gone, EditConflictError if ``expected_version``
    is given and the row has changed since.
    """
    with conn.transaction(), conn.cursor(row_factory=_AS_PRODUCT) as cur:
        current = _locked(cur, product_id, "already deleted?")
        if expected_version is not None and current.version != expected_version:
            raise EditConflictError(
                f"Product {current.sku} was changed by someone else (version {expected_version}"
                f" -> {current.version}); reload it before deleting"
            )
        cur.execute("DELETE FROM products WHERE id = %s", (product_id,))
    return current


# --- the outbox -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One captured change."""

    id: int
    product_id: int
    op: str
    version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How many changes wait in the outbox, and when the oldest was captured."""

    pending: int
    oldest: datetime | None


#: Lock and read up to ``%s`` of the oldest outbox rows no other transaction holds.
CLAIM_OUTBOX: Final = (
    "SELECT id, product_id, op, version, created_at FROM outbox "
    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
)


def claim_outbox(conn: psycopg.Connection[Any], limit: int) -> list[OutboxRow]:
    """Lock and return up to ``limit`` of the oldest unclaimed outbox rows.

    Must run inside a transaction: the locks last until it ends. Rows another relay holds are
    skipped, not waited for.
    """
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        cur.execute(CLAIM_OUTBOX, (limit,))
        return cur.fetchall()


#: Delete the outbox rows with the given ids (``%s``: a list).
DELETE_OUTBOX: Final = "DELETE FROM outbox WHERE id = ANY(%s)"


def delete_outbox(conn: psycopg.Connection[Any], ids: Sequence[int]) -> int:
    """Delete outbox rows by id (after their changes were published); returns how many."""
    if not ids:
        return 0
    return conn.execute(DELETE_OUTBOX, (list(ids),)).rowcount


#: The pending count and the oldest capture time (migration 0002's ``outbox_stats()``).
OUTBOX_STATS: Final = "SELECT pending, oldest FROM outbox_stats()"


def outbox_stats(conn: psycopg.Connection[Any]) -> OutboxStats:
    """Pending count and oldest capture time (through ``outbox_stats()``, open to the app role)."""
    pending, oldest = conn.execute(OUTBOX_STATS).fetchone()  # type: ignore[misc]
    return OutboxStats(int(pending), oldest)


#: The id of the newest outbox row (0: the outbox is empty).
OUTBOX_HIGH_WATER: Final = "SELECT coalesce(max(id), 0) FROM outbox"


def outbox_high_water(conn: psycopg.Connection[Any]) -> int:
    """The id of the newest outbox row (0 when the outbox is empty)."""
    row = conn.execute(OUTBOX_HIGH_WATER).fetchone()
    assert row is not None
    return int(row[0])


#: How many outbox rows have an id up to ``%s``.
OUTBOX_PENDING_THROUGH: Final = "SELECT count(*) FROM outbox WHERE id <= %s"


def outbox_pending_through(conn: psycopg.Connection[Any], last_id: int) -> int:
    """How many outbox rows with an id up to ``last_id`` are still there."""
    row = conn.execute(OUTBOX_PENDING_THROUGH, (last_id,)).fetchone()
    assert row is not None
    return int(row[0])


# --- reconcile runs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileRun:
    """One recorded reconcile run: what it counted and found."""

    finished_at: datetime
    products: int
    vectors: int
    missing: int
    stale: int
    orphaned: int
    repaired: int


#: Append a run (``finished_at`` defaults to now).
INSERT_RECONCILE_RUN: Final = (
    "INSERT INTO reconcile_runs "
    "(started_at, products, vectors, missing, stale, orphaned, repaired) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def record_reconcile_run(
    conn: psycopg.Connection[Any],
    *,
    started_at: datetime,
    products: int,
    vectors: int,
    missing: int,
    stale: int,
    orphaned: int,
    repaired: int,
) -> None:
    """Append a run to ``reconcile_runs`` (its ``finished_at`` is now)."""
    with conn.transaction():
        conn.execute(
            INSERT_RECONCILE_RUN, (started_at, products, vectors, missing, stale, orphaned, repaired)
        )


#: The latest run.
LAST_RECONCILE_RUN: Final = (
    "SELECT finished_at, products, vectors, missing, stale, orphaned, repaired "
    "FROM reconcile_runs ORDER BY id DESC LIMIT 1"
)


def last_reconcile_run(conn: psycopg.Connection[Any]) -> ReconcileRun | None:
    """The latest recorded run, or None when reconcile never ran."""
    with conn.cursor(row_factory=class_row(ReconcileRun)) as cur:
        cur.execute(LAST_RECONCILE_RUN)
        return cur.fetchone()
