"""The transactional outbox (migration 0002): claim, coalesce, delete, count.

Triggers on ``products`` write one outbox row per committed change the index must see, in the
same transaction as the change, so a change is durable exactly when it is committed. The relay
claims rows with ``FOR UPDATE SKIP LOCKED`` (several relays share the work without blocking
each other), publishes them, and deletes them in the same transaction only after the queue
acknowledged: a relay that dies mid-batch leaves its rows to be claimed again.

The SQL lives in :mod:`refarch.db.products` with every other statement over ``products`` and
its outbox; :func:`claim`, :func:`delete` and :func:`stats` are the relay's names for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from refarch.db import products
from refarch.db.products import OutboxRow, OutboxStats
from refarch.pipeline.changes import ProductChange

__all__ = ["NOTIFY_CHANNEL", "OutboxRow", "OutboxStats", "claim", "coalesce", "delete", "stats"]

#: The channel the triggers NOTIFY after writing outbox rows (a wake-up, never the carrier).
NOTIFY_CHANNEL = "refarch_outbox"


def claim(conn: psycopg.Connection[Any], limit: int) -> list[OutboxRow]:
    """Lock and return up to ``limit`` of the oldest unclaimed outbox rows.

    Must run inside a transaction: the locks last until it ends. Rows another relay holds are
    skipped, not waited for.
    """
    return products.claim_outbox(conn, limit)


def coalesce(rows: Sequence[OutboxRow]) -> list[ProductChange]:
    """Merge the rows of each product into one change: the latest version and operation wins.

    ``changed_at`` is the earliest capture time among the merged rows, so freshness figures
    measure from the first change the message covers. Order: by each product's first row.
    """
    merged: dict[int, ProductChange] = {}
    for row in sorted(rows, key=lambda r: r.id):
        previous = merged.get(row.product_id)
        if previous is None:
            merged[row.product_id] = ProductChange(
                row.product_id, row.version, row.op, row.created_at  # type: ignore[arg-type]
            )
        elif row.version >= previous.version:
            merged[row.product_id] = ProductChange(
                row.product_id, row.version, row.op, previous.changed_at  # type: ignore[arg-type]
            )
    return list(merged.values())


def delete(conn: psycopg.Connection[Any], ids: Sequence[int]) -> int:
    """Delete outbox rows by id (after their changes were published); returns how many."""
    return products.delete_outbox(conn, ids)


def stats(conn: psycopg.Connection[Any]) -> OutboxStats:
    """Pending count and oldest capture time (through ``outbox_stats()``, open to the app role)."""
    return products.outbox_stats(conn)
