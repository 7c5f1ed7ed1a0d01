"""A deterministic, streaming generator of realistic products.

Every product is drawn from the spec table in :mod:`refarch.catalog.categories`: a category, a
product type, a material, one or two uses, a few features, a color, a brand and a product line.
The description is written from those choices in plain sentences ("A travel mug made from
stainless steel that keeps coffee hot for hours on the morning commute. ..."), so semantic
search has meaning to find; the choices themselves are kept in ``Product.attributes``.

Same ``seed``, same products, in the same order; the first ``k`` products do not depend on
``n``. Products are produced one at a time, so a million of them take no more memory than ten.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from refarch.catalog.categories import (
    BRANDS,
    CATEGORIES,
    COLORS,
    LIST_SEPARATOR,
    CategorySpec,
    ProductType,
)
from refarch.domain.product import Product

#: ``last_updated`` timestamps fall in the year after this instant (UTC); fixed, so that
#: output does not depend on when it is generated.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 366 * 24 * 3600

_SKU_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0
_SKU_DIGITS = 6
#: SKUs are unique for up to this many products (the size of the SKU suffix space).
MAX_PRODUCTS = len(_SKU_ALPHABET) ** _SKU_DIGITS

_OPENERS = (
    "{A} {subject} made from {material} that {use}.",
    "This {subject}, made from {material}, {use}.",
    "Made from {material}, this {subject} {use}.",
    "The {line_subject} {use}. It is made from {material}.",
)
_SECOND_USE = "It also {use}."
_FEATURES = (
    "It features {features}.",
    "Highlights include {features}.",
    "It comes with {features}.",
    "Details include {features}.",
)
_CLOSERS = ("Available in {color}.", "Finished in {color}.", "Shown here in {color}.")
_CENTS = (99, 99, 95, 49, 0)


def _article(phrase: str) -> str:
    lowered = phrase.lower()
    # "a USB-C hub": a vowel letter that sounds like "you" takes "a".
    if lowered.startswith(("usb", "uni", "use", "eu")):
        return "A"
    return "An" if lowered[:1] in "aeiou" else "A"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sku_permutation(seed: int) -> tuple[int, int]:
    """Multiplier and offset of a bijection on ``range(MAX_PRODUCTS)`` chosen by ``seed``.

    ``index -> (a * index + b) % MAX_PRODUCTS`` is a permutation when ``a`` is coprime to the
    modulus, so SKUs look random yet are unique without remembering the ones already issued.
    """
    rng = random.Random(f"sku:{seed}")
    while True:
        a = rng.randrange(MAX_PRODUCTS // 3, MAX_PRODUCTS)
        if math.gcd(a, MAX_PRODUCTS) == 1:
            return a, rng.randrange(MAX_PRODUCTS)


def _sku(code: str, index: int, a: int, b: int) -> str:
    value = (a * index + b) % MAX_PRODUCTS
    chars = []
    for _ in range(_SKU_DIGITS):
        value, digit = divmod(value, len(_SKU_ALPHABET))
        chars.append(_SKU_ALPHABET[digit])
    return f"{code}-{''.join(reversed(chars))}"


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    """A shelf price between ``low`` and ``high`` dollars, log-uniform, with a retail ending."""
    dollars = int(low * math.exp(rng.random() * math.log(high / low)))
    cents = rng.choice(_CENTS)
    return Decimal(f"{max(dollars, low)}.{cents:02d}")


def _describe(
    rng: random.Random,
    product_type: ProductType,
    line: str,
    material: str,
    uses: list[str],
    features: list[str],
    color: str,
) -> str:
    opener = rng.choice(_OPENERS).format(
        A=_article(product_type.subject),
        subject=product_type.subject,
        material=material,
        use=uses[0],
        line_subject=" ".join(filter(None, [product_type.unit, line, product_type.name])),
    )
    sentences = [opener]
    if len(uses) > 1:
        sentences.append(_SECOND_USE.format(use=uses[1]))
    sentences.append(rng.choice(_FEATURES).format(features=_join(features)))
    sentences.append(rng.choice(_CLOSERS).format(color=color))
    return " ".join(sentences)


def _product(rng: random.Random, index: int, a: int, b: int) -> Product:
    category: CategorySpec = CATEGORIES[rng.randrange(len(CATEGORIES))]
    product_type = category.types[rng.randrange(len(category.types))]
    brand = rng.choice(BRANDS)
    line = rng.choice(category.lines)
    material = rng.choice(product_type.materials)
    uses = rng.sample(product_type.uses, rng.choice((1, 2)))
    features = rng.sample(product_type.features, rng.choice((2, 3)))
    color = rng.choice(COLORS)
    size = rng.choice(product_type.sizes) if product_type.sizes else None

    name = f"{brand} {line} {product_type.title}"
    if size:
        name += f", {size[:1].upper()}{size[1:]}"
    attributes = {
        "category": category.name,
        "type": product_type.name,
        "material": material,
        "uses": LIST_SEPARATOR.join(uses),
        "features": LIST_SEPARATOR.join(features),
        "color": color,
        "brand": brand,
    }
    if size:
        attributes["size"] = size
    return Product(
        sku=_sku(category.code, index, a, b),
        name=name,
        description=_describe(rng, product_type, line, material, uses, features, color),
        price=_price(rng, *product_type.price),
        category=category.name,
        last_updated=EPOCH + timedelta(seconds=rng.randrange(_SPAN_SECONDS)),
        attributes=attributes,
    )


def generate_products(n: int, seed: int = 42) -> Iterator[Product]:
    """Yield ``n`` realistic products, deterministically for a given ``seed``.

    SKUs are unique (for up to :data:`MAX_PRODUCTS` products); the products cover every
    category in :data:`~refarch.catalog.categories.CATEGORIES`. The iterator is lazy: memory
    use does not grow with ``n``. Raises ``ValueError`` (immediately, not on first ``next``)
    for a negative ``n`` or one above :data:`MAX_PRODUCTS`.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must not be negative (got {n})")
    if n > MAX_PRODUCTS:
        raise ValueError(f"n={n:,} exceeds the {MAX_PRODUCTS:,} unique SKUs the generator has")
    return _generate(n, seed)


def _generate(n: int, seed: int) -> Iterator[Product]:
    rng = random.Random(seed)
    a, b = _sku_permutation(seed)
    for index in range(n):
        yield _product(rng, index, a, b)
