"""Merge batches of products into ``products`` by SKU.

A batch of new SKUs is COPYed straight into ``products``. Otherwise it is COPYed into
``refarch_products_stage`` (a temporary table, per connection), then:

1. every staged row looks its SKU up in ``products`` and counts as new, changed or
   unchanged -- when all are unchanged (a reload), that is all;
2. otherwise each staged row records the id it matched (``product_id``) and whether any
   value differs (``changed``) -- only the staging table is written;
3. the existing rows that differ are updated, by id;
4. the new SKUs are inserted.

Every step looks rows up through an index one by one (correlated subqueries, which the
planner does not turn into joins), so the cost follows the batch, never the table: a join
against an unanalysed staging table could be planned as a hash of the whole products table
for every batch. Unchanged rows cost one lookup: no write, and no trigger on ``products``
fires for them. The insert uses ``ON CONFLICT DO NOTHING``; a SKU that another session
inserted meanwhile is then merged by running the steps again.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from refarch.errors import DatabaseError
from refarch.logs import event

log = logging.getLogger(__name__)

COLUMNS = ("sku", "name", "category", "description", "price", "last_updated")
_ATTEMPTS = 5

_CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS refarch_products_stage (
    sku text NOT NULL, name text NOT NULL, category text, description text NOT NULL,
    price numeric(12, 2) NOT NULL, last_updated timestamptz,
    product_id bigint, changed boolean
);
CREATE INDEX IF NOT EXISTS refarch_products_stage_product_id
    ON refarch_products_stage (product_id) WHERE product_id IS NOT NULL
"""
_COPY = f"COPY refarch_products_stage ({', '.join(COLUMNS)}) FROM STDIN"
_COPY_DIRECT = f"COPY products ({', '.join(COLUMNS)}) FROM STDIN"
_DIFFERS = """
(p.name, p.category, p.description, p.price, p.last_updated) IS DISTINCT FROM
(s.name, s.category, s.description, s.price, s.last_updated)
"""
# Per staged row: NULL when the SKU is new, else whether anything differs. Nothing written.
_SURVEY = f"""
SELECT count(found), count(*) FILTER (WHERE found) FROM (
    SELECT (SELECT {_DIFFERS} FROM products AS p WHERE p.sku = s.sku) AS found
    FROM refarch_products_stage AS s
) AS survey
"""
_MATCH = f"""
UPDATE refarch_products_stage AS s SET (product_id, changed) = (
    SELECT p.id, {_DIFFERS} FROM products AS p WHERE p.sku = s.sku
)
"""
_UPDATE = """
UPDATE products AS p
SET (name, category, description, price, last_updated, updated_at) = (
    SELECT s.name, s.category, s.description, s.price, s.last_updated, now()
    FROM refarch_products_stage AS s WHERE s.product_id = p.id
)
WHERE p.id = ANY (ARRAY(SELECT product_id FROM refarch_products_stage WHERE changed))
"""
_INSERT = f"""
INSERT INTO products ({', '.join(COLUMNS)})
SELECT {', '.join(COLUMNS)} FROM refarch_products_stage WHERE product_id IS NULL
ON CONFLICT (sku) DO NOTHING
"""


class BatchMerger:
    """Merges batches of products into ``products`` over one connection.

    While a load only adds new SKUs (a first load, or new products), each batch is COPYed
    straight into ``products`` -- the cheapest path -- inside a savepoint. The first batch
    that meets an existing SKU is rolled back to the savepoint and merged through the
    staging table, as is every later batch of the load.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        #: Still trying direct COPYs (no existing SKU met yet).
        self.direct = True
        self._staged = False

    def merge(self, data: bytes, rows: int) -> tuple[int, int]:
        """Merge ``rows`` products given as COPY text ``data`` (distinct SKUs) in one
        transaction (a savepoint inside the caller's); returns ``(inserted, updated)``."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            if self.direct:
                try:
                    with self.conn.transaction(), cur.copy(_COPY_DIRECT) as copy:
                        copy.write(data)
                    return rows, 0
                except psycopg.errors.UniqueViolation:
                    self.direct = False  # rolled back to the savepoint; stage from now on
            return self._merge_staged(cur, data, rows)

    def _merge_staged(self, cur: psycopg.Cursor[Any], data: bytes, rows: int) -> tuple[int, int]:
        if not self._staged:
            cur.execute(_CREATE_STAGE)
            self._staged = True
        with cur.copy(_COPY) as copy:
            copy.write(data)
        inserted = updated = 0
        for _ in range(_ATTEMPTS):
            existing, changed = cur.execute(_SURVEY).fetchone()  # type: ignore[misc]
            if existing == rows and not changed:
                break  # a reload of unchanged products: nothing to write
            cur.execute(_MATCH)
            if changed:
                cur.execute("ANALYZE refarch_products_stage")  # lookups by product_id
                updated += cur.execute(_UPDATE).rowcount
            new = rows - existing
            if not new:
                break
            added = cur.execute(_INSERT).rowcount
            inserted += added
            if added == new:
                break
            # Another session inserted some of these SKUs meanwhile: merge them as existing.
            event(log, "load_batch_raced", skus=new - added)
        else:
            raise DatabaseError(
                f"SKUs of this batch kept being inserted by other sessions {_ATTEMPTS} times"
            )
        cur.execute("TRUNCATE refarch_products_stage")
        return inserted, updated
