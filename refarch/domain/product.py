"""The product record that flows from a catalog (CSV or generator) into Postgres and the index."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Product:
    """One product as read from a catalog, before Postgres assigns it an id.

    ``attributes`` keeps any extra catalog columns (or generated attributes such as material)
    as strings; they are not columns of the ``products`` table.
    """

    sku: str
    name: str
    description: str
    price: Decimal
    category: str | None = None
    last_updated: datetime | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
