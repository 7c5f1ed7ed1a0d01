"""A small UPDATE first must not make the next large UPDATE's change capture quadratic.

PL/pgSQL caches a statement's plan per connection. The outbox trigger's anti-joins over the
transition tables, planned for a statement that touched no rows, become nested loops; the next
UPDATE of thousands of rows then takes seconds to minutes. The trigger plans that query afresh
for each statement; this compares the same large UPDATE with and without a no-op UPDATE before
it, in the same run, so machine speed cancels out.
"""

from __future__ import annotations

import time

import psycopg
import pytest

ROWS = 6_000


def _timed_bulk_update(url: str, warm_up_first: bool) -> float:
    with psycopg.connect(url) as conn:
        if warm_up_first:
            conn.execute("UPDATE products SET price = price + 1 WHERE false")
            conn.commit()
        started = time.perf_counter()
        conn.execute("UPDATE products SET price = price + 1")
        conn.commit()
        return time.perf_counter() - started


@pytest.mark.slow
def test_a_no_op_update_does_not_slow_the_next_bulk_update(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO products (sku, name, category, description, price) "
            "SELECT 'SKU-' || g, 'name ' || g, 'cat', 'description ' || g, 10 "
            "FROM generate_series(1, %s) g",
            (ROWS,),
        )
        conn.commit()
    fresh = _timed_bulk_update(db_url, warm_up_first=False)
    after_no_op = _timed_bulk_update(db_url, warm_up_first=True)
    with psycopg.connect(db_url) as conn:
        pending = conn.execute("SELECT count(*) FROM outbox WHERE op = 'upsert'").fetchone()
    # Every row was announced by the insert and by each of the two updates.
    assert pending is not None and pending[0] == 3 * ROWS
    # Quadratic behaviour is ~30x slower at this size; allow generous noise.
    assert after_no_op < max(5 * fresh, 1.0), (fresh, after_no_op)
