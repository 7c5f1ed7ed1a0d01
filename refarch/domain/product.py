"""The product record, before Postgres stores it (:class:`Product`) and as stored (:class:`StoredProduct`)."""

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


@dataclass(frozen=True, slots=True)
class StoredProduct:
    """A product row as stored in Postgres, with the versions the triggers maintain.

    What the editor, the indexer, reconcile and search all read (its fields are the columns
    :mod:`refarch.db.products` selects, in this order).
    """

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
