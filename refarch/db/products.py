"""Create, read, update and delete single products: what the app's editor calls.

Every change is validated first, then written in one transaction, so a change either lands
whole or not at all. The database triggers (migration 0002) bump the row's ``version`` and write
the outbox row in that same transaction, which is how the change reaches the index.

Validation errors are :class:`~refarch.errors.FieldValidationError`\\ s naming the field
(``sku``, ``name``, ``description``, ``category``, ``price``), so a form can show each message
next to its field. A duplicate SKU is caught from the unique constraint itself (no check-then-
insert race) and reported on the ``sku`` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from refarch.domain.validation import (
    validate_category,
    validate_description,
    validate_name,
    validate_price,
    validate_sku,
)
from refarch.errors import (
    DatabaseError,
    EditConflictError,
    FieldValidationError,
    ProductNotFoundError,
    RefarchError,
)

_COLUMNS = "id, sku, name, description, category, price, version, search_version, updated_at"


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """A product row as stored in Postgres, with the versions the triggers maintain."""

    id: int
    sku: str
    name: str
    description: str
    category: str | None
    price: Decimal
    #: Bumped by the triggers on every change to the row (used to detect concurrent edits).
    version: int
    #: The version of the last change to an indexed column: the version the index must hold.
    search_version: int
    updated_at: datetime | None = None


class _Unset:
    """Marks a field an update leaves unchanged (``None`` is a real value for category)."""

    def __repr__(self) -> str:
        return "UNSET"


#: Pass for a field :func:`update_product` should leave as it is.
UNSET: Final = _Unset()


# --- reads ------------------------------------------------------------------------------------


def _row_to_product(row: dict[str, Any]) -> StoredProduct:
    return StoredProduct(
        id=int(row["id"]),
        sku=row["sku"],
        name=row["name"],
        description=row["description"] or "",
        category=row["category"],
        price=Decimal(row["price"]),
        version=int(row["version"]),
        search_version=int(row["search_version"]),
        updated_at=row["updated_at"],
    )


def get_product(conn: psycopg.Connection[Any], product_id: int) -> StoredProduct:
    """Return the product with ``product_id``; raise ProductNotFoundError if there is none."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s", (product_id,))
        row = cur.fetchone()
    if row is None:
        raise ProductNotFoundError(f"Product {product_id} does not exist (it may have been deleted)")
    return _row_to_product(row)


def get_products(conn: psycopg.Connection[Any], product_ids: list[int]) -> dict[int, StoredProduct]:
    """Return the products among ``product_ids`` that exist, keyed by id."""
    if not product_ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM products WHERE id = ANY(%s)", (list(product_ids),)
        )
        return {int(row["id"]): _row_to_product(row) for row in cur.fetchall()}


def find_by_sku(conn: psycopg.Connection[Any], sku: str) -> StoredProduct | None:
    """Return the product with this SKU, or ``None``."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM products WHERE sku = %s", (sku.strip(),))
        row = cur.fetchone()
    return _row_to_product(row) if row else None


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


# --- writes -----------------------------------------------------------------------------------


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
    values = {
        "sku": validate_sku(sku),
        "name": validate_name(name),
        "description": validate_description(description),
        "category": validate_category(category),
        "price": validate_price(price),
    }
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "INSERT INTO products (sku, name, description, category, price, last_updated)"
                " VALUES (%(sku)s, %(name)s, %(description)s, %(category)s, %(price)s, now())"
                f" RETURNING {_COLUMNS}",
                values,
            )
            row = cur.fetchone()
    except pg_errors.UniqueViolation as exc:
        raise _unique_violation(exc, values["sku"]) from None
    assert row is not None
    return _row_to_product(row)


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
    changes: dict[str, Any] = {}
    if name is not UNSET:
        changes["name"] = validate_name(name)
    if description is not UNSET:
        changes["description"] = validate_description(description)
    if category is not UNSET:
        changes["category"] = validate_category(category)
    if price is not UNSET:
        changes["price"] = validate_price(price)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s FOR UPDATE", (product_id,))
        row = cur.fetchone()
        if row is None:
            raise ProductNotFoundError(
                f"Product {product_id} does not exist (it may have been deleted)"
            )
        current = _row_to_product(row)
        if expected_version is not None and current.version != expected_version:
            raise EditConflictError(
                f"Product {current.sku} was changed by someone else (version {expected_version}"
                f" -> {current.version}); reload it and edit again"
            )
        changed = {k: v for k, v in changes.items() if getattr(current, k) != v}
        if not changed:
            return current
        assignments = ", ".join(f"{column} = %({column})s" for column in changed)
        cur.execute(
            f"UPDATE products SET {assignments}, last_updated = now(), updated_at = now()"
            f" WHERE id = %(id)s RETURNING {_COLUMNS}",
            {**changed, "id": product_id},
        )
        updated = cur.fetchone()
    assert updated is not None
    return _row_to_product(updated)


def delete_product(
    conn: psycopg.Connection[Any], product_id: int, *, expected_version: int | None = None
) -> StoredProduct:
    """Delete one product in its own transaction; return the row as it was.

    Raises ProductNotFoundError if it is already gone, EditConflictError if ``expected_version``
    is given and the row has changed since.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM products WHERE id = %s FOR UPDATE", (product_id,))
        row = cur.fetchone()
        if row is None:
            raise ProductNotFoundError(f"Product {product_id} does not exist (already deleted?)")
        current = _row_to_product(row)
        if expected_version is not None and current.version != expected_version:
            raise EditConflictError(
                f"Product {current.sku} was changed by someone else (version {expected_version}"
                f" -> {current.version}); reload it before deleting"
            )
        cur.execute("DELETE FROM products WHERE id = %s", (product_id,))
    return current


# --- indexing progress ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexingState:
    """Where a product's latest change is: Postgres's version against the index's.

    ``postgres_version`` is the row's ``search_version`` (None once the row is deleted);
    ``indexed_version`` the version in the vector's metadata (None when there is no vector).
    """

    product_id: int
    postgres_version: int | None
    indexed_version: int | None

    @property
    def state(self) -> str:
        """``searchable``, ``indexing`` (a newer change is on its way), ``removing`` (deleted in
        Postgres, still in the index) or ``deleted`` (gone from both)."""
        if self.postgres_version is None:
            return "deleted" if self.indexed_version is None else "removing"
        if self.indexed_version is not None and self.indexed_version >= self.postgres_version:
            return "searchable"
        return "indexing"

    @property
    def is_synced(self) -> bool:
        """Whether search reflects the latest change (searchable, or deleted from both)."""
        return self.state in ("searchable", "deleted")


def indexing_states(
    conn: psycopg.Connection[Any], index: Any, product_ids: list[int]
) -> dict[int, IndexingState]:
    """For each id, the version Postgres holds and the version the index holds.

    ``index`` is the vector index the wiring builds (``fetch`` by vector id). Lets the app
    show an edited row as "indexing…" until the index has caught up, then "searchable".
    """
    from refarch.pipeline.indexer import fetch_state

    ids = list(dict.fromkeys(int(pid) for pid in product_ids))
    if not ids:
        return {}
    with conn.cursor() as cur:
        cur.execute("SELECT id, search_version FROM products WHERE id = ANY(%s)", (ids,))
        postgres = {int(pid): int(version) for pid, version in cur.fetchall()}
    held = fetch_state(index, ids)
    return {
        pid: IndexingState(
            pid, postgres.get(pid), held[pid].version if pid in held else None
        )
        for pid in ids
    }
