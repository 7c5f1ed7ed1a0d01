"""The product generator: deterministic, unique SKUs, realistic and consistent, streaming."""

from __future__ import annotations

import itertools
import re
import time
import tracemalloc
from datetime import timedelta
from decimal import Decimal

import pytest

from refarch.catalog import (
    ATTRIBUTE_KEYS,
    CATEGORIES,
    LIST_SEPARATOR,
    Product,
    find_type,
    generate_products,
    labelled_queries,
    products_to_frame,
)
from refarch.catalog.categories import BRANDS, COLORS
from refarch.catalog.generator import EPOCH, MAX_PRODUCTS

SKU = re.compile(r"^[A-Z]{3}-[0-9A-HJ-NP-Z]{6}$")


def test_same_seed_gives_the_same_products() -> None:
    assert list(generate_products(300, seed=7)) == list(generate_products(300, seed=7))


def test_different_seeds_give_different_products() -> None:
    first = list(generate_products(50, seed=1))
    second = list(generate_products(50, seed=2))
    assert [p.sku for p in first] != [p.sku for p in second]
    assert [p.description for p in first] != [p.description for p in second]


def test_a_prefix_does_not_depend_on_n() -> None:
    assert list(generate_products(100, seed=3)) == list(generate_products(400, seed=3))[:100]


def test_skus_are_unique_and_well_formed() -> None:
    skus = [p.sku for p in generate_products(20_000, seed=11)]
    assert len(set(skus)) == len(skus)
    assert all(SKU.match(sku) for sku in skus[:1000])
    codes = {c.code for c in CATEGORIES}
    assert {sku.split("-")[0] for sku in skus} == codes


def test_at_least_fifteen_categories_all_of_them_used() -> None:
    assert len(CATEGORIES) >= 15
    assert len({c.name for c in CATEGORIES}) == len(CATEGORIES)
    assert len({c.code for c in CATEGORIES}) == len(CATEGORIES)
    seen = {p.category for p in generate_products(3000, seed=5)}
    assert seen == {c.name for c in CATEGORIES}


def test_products_are_consistent_with_the_spec_table() -> None:
    for product in generate_products(2000, seed=9):
        assert isinstance(product, Product)
        attributes = product.attributes
        assert set(attributes) <= set(ATTRIBUTE_KEYS)
        assert set(ATTRIBUTE_KEYS) - set(attributes) <= {"size"}
        category, product_type = find_type(attributes["type"])
        assert product.category == category.name == attributes["category"]
        assert product.sku.startswith(category.code + "-")
        assert attributes["material"] in product_type.materials
        assert attributes["color"] in COLORS
        assert attributes["brand"] in BRANDS
        uses = attributes["uses"].split(LIST_SEPARATOR)
        features = attributes["features"].split(LIST_SEPARATOR)
        assert 1 <= len(uses) <= 2 and set(uses) <= set(product_type.uses)
        assert 2 <= len(features) <= 3 and set(features) <= set(product_type.features)
        # The description says what the attributes say: that is what search can find.
        for phrase in [attributes["material"], attributes["color"], *uses, *features]:
            assert phrase in product.description, (phrase, product.description)
        assert product_type.name in product.description
        assert product.name.startswith(attributes["brand"] + " ")
        assert product_type.title in product.name
        if "size" in attributes:
            assert product_type.sizes and attributes["size"] in product_type.sizes
        low, high = product_type.price
        assert Decimal(low) <= product.price < Decimal(high)
        assert product.price == product.price.quantize(Decimal("0.01"))
        assert product.last_updated is not None
        assert product.last_updated.utcoffset() == timedelta(0)
        assert EPOCH <= product.last_updated < EPOCH + timedelta(days=366)


def test_descriptions_read_as_sentences() -> None:
    for product in generate_products(500, seed=4):
        description = product.description
        assert description[0].isupper() and description.endswith(".")
        assert "  " not in description and " ." not in description
        assert len(description.split()) >= 15
        # Plural product types get a singular subject ("pair of running shoes ... cushions").
        assert "shoes cushions" not in description
        assert "An USB" not in description and "an USB" not in description


def test_prices_differ_by_category() -> None:
    by_category: dict[str, list[Decimal]] = {}
    for product in generate_products(6000, seed=8):
        by_category.setdefault(product.category or "", []).append(product.price)
    medians = {c: sorted(p)[len(p) // 2] for c, p in by_category.items()}
    assert medians["Kitchen Appliances"] > 3 * medians["Drinkware"]


def test_every_type_has_labelled_queries() -> None:
    queries = list(labelled_queries())
    types = {t.name for c in CATEGORIES for t in c.types}
    assert {type_name for _, _, type_name in queries} == types
    assert len(types) == sum(len(c.types) for c in CATEGORIES), "type names must be unique"
    for query, category, type_name in queries:
        assert query.strip() and find_type(type_name)[0].name == category
    with pytest.raises(KeyError, match="no product type named 'hovercraft'"):
        find_type("hovercraft")


def test_generation_is_lazy() -> None:
    started = time.perf_counter()
    products = generate_products(MAX_PRODUCTS)  # two billion: only lazy generation survives
    first = next(products)
    assert time.perf_counter() - started < 1.0
    assert first == next(generate_products(1))


@pytest.mark.parametrize("n", [-1, MAX_PRODUCTS + 1])
def test_impossible_sizes_fail_at_the_call(n: int) -> None:
    with pytest.raises(ValueError, match="n"):
        generate_products(n)  # no next(): the check is not deferred to iteration


def test_memory_does_not_grow_with_n() -> None:
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            for _ in generate_products(n, seed=1):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(300), peak(3_000)
    # Ten times the products, about the same peak: one product is alive at a time (a few kB).
    # Keeping them (a list) would need some 6 MB for 3,000 products.
    assert large < 200_000, large
    assert large < 2 * small + 20_000, (small, large)


def test_products_to_frame() -> None:
    products = list(itertools.islice(generate_products(40, seed=2), 40))
    frame = products_to_frame(products)
    assert len(frame) == 40
    assert list(frame.columns[:6]) == ["sku", "name", "category", "price", "last_updated",
                                       "description"]
    assert {"type", "material", "uses", "features"} <= set(frame.columns)
    assert frame["price"].dtype == float
    assert frame.loc[0, "price"] == float(products[0].price)
    assert str(frame["last_updated"].dt.tz) == "UTC"
    assert products_to_frame([]).empty
