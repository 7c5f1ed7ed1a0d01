"""Product CRUD for the app against a real Postgres: validation, one transaction per change,
duplicate SKUs, concurrent edits and the versions the pipeline relies on."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from refarch.bootstrap import with_user
from refarch.db import products
from refarch.errors import EditConflictError, FieldValidationError, ProductNotFoundError


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection as the app's least-privilege role to a fresh, migrated database."""
    with psycopg.connect(with_user(db_url, "refarch_app"), autocommit=True) as connection:
        yield connection


def _add(conn, sku: str = "MUG-1", **overrides):
    fields = {"sku": sku, "name": "Travel mug", "description": "Keeps coffee hot for hours",
              "category": "Kitchen", "price": "24.90"}
    fields.update(overrides)
    return products.insert_product(conn, **fields)


def _outbox(conn) -> list[tuple]:
    # The app role may not read the outbox; outbox_stats() is granted to it.
    return conn.execute("SELECT pending FROM outbox_stats()").fetchone()[0]


def test_insert_returns_the_stored_row_and_announces_it(conn) -> None:
    product = _add(conn, name="  Travel mug ", price="$1,024.50")
    assert product.name == "Travel mug"
    assert product.price == Decimal("1024.50")
    assert product.version > 0 and product.search_version == product.version
    assert products.get_product(conn, product.id) == product
    assert _outbox(conn) == 1
    assert products.list_categories(conn) == ["Kitchen"]


def test_duplicate_sku_is_a_field_error_and_writes_nothing(conn) -> None:
    _add(conn, sku="MUG-1")
    with pytest.raises(FieldValidationError) as info:
        _add(conn, sku=" MUG-1 ", name="Another mug")
    assert info.value.field == "sku"
    assert "already used" in str(info.value)
    assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == 1
    assert _outbox(conn) == 1
    # The connection is still usable (the failed transaction was rolled back).
    assert products.find_by_sku(conn, "MUG-1") is not None


@pytest.mark.parametrize(("field", "value"), [("name", "   "), ("price", "-3"), ("price", "x")])
def test_invalid_update_changes_nothing(conn, field, value) -> None:
    product = _add(conn)
    with pytest.raises(FieldValidationError) as info:
        products.update_product(conn, product.id, description="new text", **{field: value})
    assert info.value.field == field
    # Nothing half-written: the valid description change did not land either.
    assert products.get_product(conn, product.id) == product
    assert _outbox(conn) == 1


def test_update_bumps_the_search_version_once_per_real_change(conn) -> None:
    product = _add(conn)
    updated = products.update_product(
        conn, product.id, description="Double-walled steel mug", price=19.99
    )
    assert updated.description == "Double-walled steel mug"
    assert updated.price == Decimal("19.99")
    assert updated.search_version > product.search_version
    assert _outbox(conn) == 2
    same = products.update_product(conn, product.id, description="Double-walled steel mug")
    assert same == updated  # no change, no new version, no re-index
    assert _outbox(conn) == 2


def test_stale_edit_is_refused(conn) -> None:
    product = _add(conn)
    products.update_product(conn, product.id, name="Someone else's edit")
    with pytest.raises(EditConflictError, match="changed by someone else"):
        products.update_product(conn, product.id, name="Mine", expected_version=product.version)
    assert products.get_product(conn, product.id).name == "Someone else's edit"
    with pytest.raises(EditConflictError):
        products.delete_product(conn, product.id, expected_version=product.version)


def test_delete_and_missing_products(conn) -> None:
    product = _add(conn)
    gone = products.delete_product(conn, product.id)
    assert gone.sku == product.sku
    assert _outbox(conn) == 2  # the insert and the delete
    with pytest.raises(ProductNotFoundError):
        products.get_product(conn, product.id)
    with pytest.raises(ProductNotFoundError):
        products.update_product(conn, product.id, name="x")
    with pytest.raises(ProductNotFoundError):
        products.delete_product(conn, product.id)
