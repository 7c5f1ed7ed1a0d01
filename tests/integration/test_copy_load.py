"""Bulk loading products with COPY into a real, migrated database."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from refarch.catalog import generate_products
from refarch.db.load import load_products
from refarch.domain.product import Product
from refarch.domain.validation import MAX_DESCRIPTION_LENGTH
from refarch.errors import DatabaseError, InputError

T0 = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def _product(i: int, **changes: Any) -> Product:
    base = Product(
        sku=f"SKU-{i:05d}", name=f"Product {i}", description=f"Description of product {i}.",
        price=Decimal(f"{i}.99"), category=f"cat-{i % 3}", last_updated=T0 + timedelta(days=i),
    )
    return replace(base, **changes)


def _rows(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT sku, name, category, description, price, last_updated FROM products"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def _expected(p: Product) -> tuple:
    return (p.name, p.category, p.description, p.price, p.last_updated)


def _stamps(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT sku, id, created_at, updated_at, xmin::text FROM products"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_a_load_stores_every_product_exactly(db_url: str) -> None:
    products = [_product(i) for i in range(25)]
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, products, batch_size=7, progress=False)
    assert (result.inserted, result.updated, result.unchanged) == (25, 0, 0)
    assert result.rejected == [] and result.duplicates == 0
    assert result.seconds > 0 and result.rows_per_second > 0
    assert _rows(db_url) == {p.sku: _expected(p) for p in products}


def test_reloading_the_same_products_changes_nothing(db_url: str) -> None:
    products = [_product(i) for i in range(30)]
    with psycopg.connect(db_url) as conn:
        load_products(conn, products, batch_size=8, progress=False)
    before = _stamps(db_url)
    with psycopg.connect(db_url) as conn:
        again = load_products(conn, products, batch_size=8, progress=False)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 30)
    assert _stamps(db_url) == before  # same ids, timestamps and row versions: no writes


def test_edits_are_applied_and_new_products_added(db_url: str) -> None:
    original = [_product(i) for i in range(10)]
    with psycopg.connect(db_url) as conn:
        load_products(conn, original, progress=False)
    before = _stamps(db_url)
    edited = list(original)
    edited[2] = replace(edited[2], price=Decimal("1.50"))
    edited[5] = replace(edited[5], description="A new description.")
    edited[7] = replace(edited[7], category=None)
    edited[8] = replace(edited[8], last_updated=None)
    edited += [_product(100), _product(101)]
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, edited, progress=False)
    assert (result.inserted, result.updated, result.unchanged) == (2, 4, 6)
    assert _rows(db_url) == {p.sku: _expected(p) for p in edited}
    after = _stamps(db_url)
    for i, p in enumerate(original):
        old_id, old_created, old_updated, _ = before[p.sku]
        new_id, new_created, new_updated, _ = after[p.sku]
        assert (new_id, new_created) == (old_id, old_created)  # an update, not a re-insert
        assert (new_updated > old_updated) == (i in (2, 5, 7, 8))


def test_a_sku_repeated_in_the_input_keeps_the_last_occurrence(db_url: str) -> None:
    products = [_product(1), _product(2), _product(1, name="Second version"), _product(3)]
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, products, progress=False)
    assert result.duplicates == 1 and result.inserted == 3
    assert _rows(db_url)["SKU-00001"][0] == "Second version"


WEIRD = [
    'double "quotes" and \'single\' ones',
    "tab\there and\ttwice",
    "line one\nline two\r\nline three\rend",
    "back\\slash, \\N, \\t and a trailing backslash\\",
    "\\.",
    "unicode: café, naïve, 中文, العربية, emoji 🧉☕, combining é, zero\u200bwidth",
    "commas, semicolons; pipes | and %s %(name)s placeholders",
    "  leading and trailing spaces  ",
]


@pytest.mark.parametrize("text", WEIRD)
def test_awkward_text_survives_the_round_trip(db_url: str, text: str) -> None:
    # The one rule set (refarch.domain.validation) decides what each field may hold: a
    # description any text but NUL; a name or category no control character but tab and
    # newline (so no CR); a SKU no whitespace. Surrounding whitespace is stripped, as the
    # editor strips it, so a loaded product saves unchanged.
    one_line = text.replace("\r", "")
    sku = "S" + "".join(text.split())[:10]
    product = _product(1, name=one_line, description=text, category=one_line, sku=sku)
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, [product], progress=False)
        assert result.inserted == 1
        again = load_products(conn, [product], progress=False)
    assert again.unchanged == 1  # the stored text compares equal to the (cleaned) input
    assert _rows(db_url) == {
        sku: (one_line.strip(), one_line.strip(), text.strip(), product.price, product.last_updated)
    }


def test_products_that_cannot_be_stored_are_reported_and_the_rest_load(db_url: str) -> None:
    good = [_product(i) for i in range(4)]
    bad = [
        _product(10, sku="   "),
        _product(11, name=""),
        _product(12, description="x" * (MAX_DESCRIPTION_LENGTH + 1)),
        _product(13, price=Decimal("-1")),
        _product(14, price=Decimal("12345678901.00")),
        _product(15, description="nul \x00 byte"),
        _product(16, name="lone surrogate \udc80"),
        _product(17, price=Decimal("NaN")),
    ]
    mixed = [good[0], *bad[:4], good[1], good[2], *bad[4:], good[3]]
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, mixed, batch_size=2, progress=False)
    assert result.inserted == 4
    reasons = {r.position: r.reason for r in result.rejected}
    assert sorted(reasons) == [2, 3, 4, 5, 8, 9, 10, 11]
    assert "SKU must not be empty" in reasons[2]
    assert "Name must not be empty" in reasons[3]
    assert f"at most {MAX_DESCRIPTION_LENGTH:,}" in reasons[4]
    assert "negative" in reasons[5]
    assert "exceeds the maximum" in reasons[8]
    assert "NUL" in reasons[9]
    assert "not valid Unicode" in reasons[10]
    assert "not a finite number" in reasons[11]
    assert set(_rows(db_url)) == {p.sku for p in good}


def test_naive_times_are_utc(db_url: str) -> None:
    product = _product(1, last_updated=datetime(2023, 9, 20, 22, 51, 32), price=Decimal("10.5"))
    with psycopg.connect(db_url) as conn:
        load_products(conn, [product], progress=False)
        again = load_products(conn, [product], progress=False)
    stored = _rows(db_url)[product.sku]
    assert stored[4] == datetime(2023, 9, 20, 22, 51, 32, tzinfo=UTC)
    assert stored[3] == Decimal("10.50")
    assert again.unchanged == 1  # the aware time compares equal on both sides


def test_prices_are_never_rounded_more_than_two_places_are_refused(db_url: str) -> None:
    # The one rule set: the editor refuses 10.005 (a typo, not a rounding), so loads do too.
    products = [_product(1, price=Decimal("10.005")), _product(2, price=Decimal("9999999999.994")),
                _product(3, price=Decimal("10.50"))]
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, products, progress=False)
    assert result.inserted == 1
    reasons = {r.position: r.reason for r in result.rejected}
    assert sorted(reasons) == [1, 2]
    assert "more than two decimal places" in reasons[1]
    assert "exceeds the maximum" in reasons[2]  # no longer rounded down to the maximum
    assert _rows(db_url)[products[2].sku][3] == Decimal("10.50")


def test_generated_catalog_loads_and_reloads_idempotently(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        first = load_products(conn, generate_products(2_000, seed=7), total=2_000,
                              batch_size=500, progress=False)
        second = load_products(conn, generate_products(2_000, seed=7), batch_size=500,
                               progress=False)
        count = conn.execute("SELECT count(*), count(DISTINCT category) FROM products")
        rows, categories = count.fetchone() or (0, 0)
    assert first.inserted == 2_000 and second.unchanged == 2_000
    assert rows == 2_000 and categories >= 15


def test_inside_a_callers_transaction_the_load_rolls_back_with_it(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with conn.transaction(force_rollback=True):
            result = load_products(conn, [_product(i) for i in range(5)], batch_size=2,
                                   progress=False)
            assert result.inserted == 5
    assert _rows(db_url) == {}


def test_a_database_without_the_schema_gives_a_clear_error(new_database) -> None:
    url = new_database(migrated=False)
    with psycopg.connect(url) as conn, pytest.raises(DatabaseError, match="products"):
        load_products(conn, generate_products(50_000), batch_size=100, progress=False)
    # the thread preparing batches ahead stopped with the load
    assert not [t for t in threading.enumerate() if t.name == "refarch-load-prepare"]


def test_an_error_in_the_input_stream_stops_the_load_with_it(db_url: str) -> None:
    def products():
        yield _product(1)
        yield _product(2)
        raise RuntimeError("the source broke")

    with psycopg.connect(db_url) as conn, pytest.raises(RuntimeError, match="source broke"):
        load_products(conn, products(), batch_size=1, progress=False)


def test_a_batch_size_below_one_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url) as conn, pytest.raises(InputError, match="batch size"):
        load_products(conn, [_product(1)], batch_size=0, progress=False)


def test_two_loads_of_the_same_skus_at_once_insert_each_sku_once(db_url: str) -> None:
    """Both sessions see the SKUs as new; the loser of each race merges them as existing."""
    versions = {
        "a": [_product(i, name=f"A {i}") for i in range(3_000)],
        "b": [_product(i, name=f"B {i}") for i in range(3_000)],
    }
    results: dict[str, Any] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(key: str) -> None:
        try:
            with psycopg.connect(db_url) as conn:
                start.wait()
                results[key] = load_products(conn, versions[key], batch_size=1_000,
                                             progress=False)
        except BaseException as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(key,)) for key in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results["a"].inserted + results["b"].inserted == 3_000
    rows = _rows(db_url)
    assert len(rows) == 3_000
    assert all(name in (f"A {i}", f"B {i}") for i, (name, *_) in
               ((int(sku[4:]), values) for sku, values in rows.items()))


def test_a_load_that_meets_existing_skus_half_way_merges_the_rest(db_url: str) -> None:
    """New SKUs are COPYed straight in; from the first batch with a known SKU on, staged."""
    with psycopg.connect(db_url) as conn:
        load_products(conn, [_product(i) for i in range(100, 110)], progress=False)
    later = [_product(i) for i in range(10)] + [
        _product(i, name="renamed") if i % 2 else _product(i) for i in range(100, 110)
    ]
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, later, batch_size=4, progress=False)
    assert (result.inserted, result.updated, result.unchanged) == (10, 5, 5)
    assert _rows(db_url) == {p.sku: _expected(p) for p in later}
