"""A product that loads is always editable (real Postgres, the app's own services).

Products with the extreme values each field accepts are loaded by the CSV reader and by a
generated load (``load_products`` of Product objects, as ``generate_products`` feeds it), then
saved through :class:`refarch.webapp.services.AppServices` exactly as the app's editor saves
them: every field of the form sent back, with the price or the name changed. And a value one
past a limit is refused by every entry point with the same message.

Through the services, not the Streamlit page: the page's editor opens a product from search
results, which needs the model and a vector index (the AppTest tests in tests/app run a whole
``refarch up`` stack for that).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from refarch.bootstrap import with_user
from refarch.catalog import generate_products, read_catalog_csv
from refarch.db.load import load_products
from refarch.db.products import get_products
from refarch.domain.product import Product, StoredProduct
from refarch.domain.validation import (
    MAX_CATEGORY_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PRICE,
    MAX_SKU_LENGTH,
)
from refarch.errors import FieldValidationError
from refarch.webapp.services import AppServices, open_pool

HEADER = ["name", "sku", "description", "price", "last_updated", "category"]


def _longest_description() -> str:
    """Exactly MAX_DESCRIPTION_LENGTH characters of awkward text (quotes, commas, tabs, CR LF,
    backslashes, COPY's \\N and \\., non-BMP characters), with no surrounding whitespace."""
    piece = 'Zeile ü, "quoted"\tcell \\N \\. 🧉\r\nnext '
    text = (piece * (MAX_DESCRIPTION_LENGTH // len(piece) + 1))[: MAX_DESCRIPTION_LENGTH - 1]
    return text + "."


def _longest_name(mark: str) -> str:
    """MAX_NAME_LENGTH characters, non-ASCII and non-BMP ones included."""
    return (f"{mark} Ärmel naïve 中文 العربية ☕🧉 " * 30)[: MAX_NAME_LENGTH - 1] + "Z"


#: (sku, name, description, price as the CSV writes it, price as a Decimal, last_updated, category)
EXTREMES: list[tuple[str, str, str, str, Decimal, str, str]] = [
    # Every field at its longest, the largest price.
    ("X" * (MAX_SKU_LENGTH - 2), _longest_name("max"), _longest_description(),
     "$9,999,999,999.99", MAX_PRICE, "2023-09-20 22:51:32", "K" * MAX_CATEGORY_LENGTH),
    # Every optional field empty, the smallest price, the shortest SKU and name.
    ("S", "N", "", "0", Decimal("0"), "", ""),
    # Unicode that NFC changes (e + combining acute), whitespace the rules strip.
    ("SKU-e\u0301", "  Cafe\u0301 mug\t(two parts)  ", "  line one\nline two  ", "0.01",
     Decimal("0.01"), "2024-02-29", " Küche & Bad "),
]


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def _csv_rows(prefix: str) -> list[list[str]]:
    return [[name, prefix + sku, description, price, updated, category]
            for sku, name, description, price, _, updated, category in EXTREMES]


def _generated(prefix: str) -> list[Product]:
    made = [
        Product(sku=prefix + sku, name=name, description=description, price=price,
                category=category or None,
                last_updated=datetime.fromisoformat(updated) if updated else None)
        for sku, name, description, _, price, updated, category in EXTREMES
    ]
    return made + list(generate_products(20, seed=11))


@pytest.fixture
def services(db_url: str) -> Iterator[AppServices]:
    """The app's services as the app builds them: a pool as the least-privilege app role."""
    pool = open_pool(with_user(db_url, "refarch_app"))
    app = AppServices(pool=pool, embedder=None, index=None, status_source=lambda: None, queue=None)
    yield app
    app.close()


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> list[StoredProduct]:
    """The extremes loaded from a CSV file (SKUs ``C-...``) and by a generated load (``G-...``)."""
    read = read_catalog_csv(_write_csv(tmp_path / "extremes.csv", _csv_rows("C-")))
    assert read.errors == []
    generated = _generated("G-")
    with psycopg.connect(db_url) as conn:
        from_csv = load_products(conn, read.products, progress=False)
        from_generator = load_products(conn, generated, progress=False)
        ids = [row[0] for row in conn.execute("SELECT id FROM products ORDER BY id").fetchall()]
    assert from_csv.rejected == [] and from_csv.inserted == len(EXTREMES)
    assert from_generator.rejected == [] and from_generator.inserted == len(generated)
    with psycopg.connect(db_url) as conn:
        stored = get_products(conn, ids)
    return [stored[pid] for pid in ids]


def _form(product: StoredProduct) -> dict[str, Any]:
    """What the app's editor form holds for ``product`` (see ``_open_in_editor`` in the page)."""
    return {
        "name": product.name,
        "description": product.description,
        "category": product.category or "",
        "price": f"{product.price:.2f}",
    }


def test_the_extremes_load_identically_by_csv_and_by_a_generated_load(loaded) -> None:
    by_sku = {p.sku: p for p in loaded}
    for sku, *_ in EXTREMES:
        clean_sku = by_sku.get("C-" + sku.replace("e\u0301", "\u00e9"))
        assert clean_sku is not None, sku
        twin = by_sku["G-" + clean_sku.sku[2:]]
        assert (clean_sku.name, clean_sku.description, clean_sku.category, clean_sku.price) == (
            twin.name, twin.description, twin.category, twin.price
        )
    longest = by_sku["C-" + EXTREMES[0][0]]
    assert len(longest.name) == MAX_NAME_LENGTH and len(longest.description) == MAX_DESCRIPTION_LENGTH
    assert longest.price == MAX_PRICE and len(longest.category or "") == MAX_CATEGORY_LENGTH
    emptiest = by_sku["C-S"]
    assert (emptiest.description, emptiest.category, emptiest.price) == ("", None, Decimal("0.00"))
    cleaned = by_sku["C-SKU-\u00e9"]
    assert cleaned.name == "Caf\u00e9 mug\t(two parts)" and cleaned.category == "Küche & Bad"


def test_every_loaded_product_saves_unchanged_and_takes_a_price_or_a_name_edit(
    services: AppServices, loaded
) -> None:
    for product in loaded:
        opened = services.get_product(product.id)
        assert opened == product
        # Saving the form untouched changes nothing: the loader stored what the editor would.
        same = services.update_product(product.id, expected_version=opened.version, **_form(opened))
        assert same == opened, product.sku
        # A price-only edit: the other fields come back from the form as they were.
        new_price = Decimal("0.00") if opened.price else MAX_PRICE
        priced = services.update_product(
            product.id, expected_version=opened.version, **{**_form(opened), "price": f"{new_price}"}
        )
        assert priced.price == new_price and priced.version > opened.version
        assert (priced.name, priced.description, priced.category) == (
            opened.name, opened.description, opened.category
        )
        # A name edit, to another name at the longest limit.
        new_name = _longest_name("edit")
        renamed = services.update_product(
            product.id, expected_version=priced.version, **{**_form(priced), "name": new_name}
        )
        assert renamed.name == new_name and renamed.search_version > priced.search_version
        assert (renamed.description, renamed.category, renamed.price) == (
            priced.description, priced.category, priced.price
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sku", "X" * (MAX_SKU_LENGTH + 1)),
        ("sku", "has space"),
        ("name", "n" * (MAX_NAME_LENGTH + 1)),
        ("name", "bell\x07character"),
        ("name", ""),
        ("description", "d" * (MAX_DESCRIPTION_LENGTH + 1)),
        ("category", "c" * (MAX_CATEGORY_LENGTH + 1)),
        ("price", "10000000000.00"),
        ("price", "1.001"),
        ("price", "-0.01"),
    ],
)
def test_one_past_a_limit_is_refused_everywhere_with_the_same_message(
    services: AppServices, db_url: str, tmp_path: Path, field: str, value: str
) -> None:
    fields = {"sku": "OK-1", "name": "A mug", "description": "Holds coffee.", "category": "Kitchen",
              "price": "1.00", field: value}
    # The app's "add a product" form.
    with pytest.raises(FieldValidationError) as info:
        services.add_product(**fields)
    assert info.value.field == field
    message = str(info.value)
    # The CSV reader.
    row = [fields["name"], fields["sku"], fields["description"], fields["price"], "", fields["category"]]
    read = read_catalog_csv(_write_csv(tmp_path / "bad.csv", [row]))
    assert read.products == [] and [e.reason for e in read.errors] == [message]
    # A generated load.
    product = Product(sku=fields["sku"], name=fields["name"], description=fields["description"],
                      category=fields["category"], price=Decimal(fields["price"]))
    with psycopg.connect(db_url) as conn:
        result = load_products(conn, [product], progress=False)
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (0,)
    assert [r.reason for r in result.rejected] == [message]
