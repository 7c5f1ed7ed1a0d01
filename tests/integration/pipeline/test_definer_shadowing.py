"""The change-capture functions cannot be shadowed by a caller's temporary objects.

The triggers and ``outbox_stats()`` run as the table owner (``SECURITY DEFINER``). PostgreSQL
searches the caller's temporary schema (``pg_temp``) first for tables and sequences unless the
function's ``search_path`` lists it last, so a role that may create a temporary ``outbox`` or
``product_version_seq`` could send its own changes there, or stamp them with old versions
the indexer then skips: the change would never reach the index. Two defences, each tested on
its own: the service roles may not create temporary objects at all (``migrate`` revokes
``TEMPORARY``), and every definer function pins ``search_path`` with ``pg_temp`` last or
names everything by schema (migration 0006), which holds even where ``TEMPORARY`` was granted
back.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from refarch.bootstrap import ROLE_NAMES, with_user
from refarch.db.migrations import migrate

#: The temporary objects a caller could create to shadow the ones the triggers write.
_SHADOWS = (
    "CREATE TEMP TABLE outbox (id bigint GENERATED ALWAYS AS IDENTITY, product_id bigint, "
    "op text, version bigint, created_at timestamptz DEFAULT now())",
    "CREATE TEMP SEQUENCE product_version_seq",
    "CREATE TEMP TABLE products (LIKE public.products)",
)
#: Definer functions without a SET clause (a COPY runs them per row): every name in them is
#: schema-qualified instead, which the insert below proves.
_QUALIFIED_WITHOUT_SET = {"products_stamp_insert"}


@pytest.fixture
def hardened_db(pipeline_db: str) -> str:
    """The fresh database after ``migrate`` (database-level privileges are not copied from a
    template database, so ``migrate`` asserts them on every run)."""
    migrate(pipeline_db)
    return pipeline_db


@pytest.fixture
def temp_granted_back(hardened_db: str) -> Iterator[str]:
    """``hardened_db`` where an administrator granted ``TEMPORARY`` back to every service role."""
    grant = sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(
        sql.Identifier(conninfo_to_dict(hardened_db)["dbname"]),
        sql.SQL(", ").join(sql.Identifier(name) for name in ROLE_NAMES.values()),
    )
    with psycopg.connect(hardened_db, autocommit=True) as conn:
        conn.execute(grant)
    yield hardened_db


def _real_outbox(owner: psycopg.Connection) -> list[tuple[int, str, int]]:
    rows = owner.execute("SELECT product_id, op, version FROM public.outbox ORDER BY id")
    return [(int(p), str(o), int(v)) for p, o, v in rows]


def _real_last_version(owner: psycopg.Connection) -> int:
    row = owner.execute("SELECT last_value FROM public.product_version_seq").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("role", sorted(ROLE_NAMES))
def test_service_roles_cannot_create_temporary_objects(hardened_db: str, role: str) -> None:
    with psycopg.connect(with_user(hardened_db, ROLE_NAMES[role]), autocommit=True) as conn:
        for statement in _SHADOWS:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="temporary"):
                conn.execute(statement)


def test_migrate_keeps_the_revocation_when_run_again(hardened_db: str) -> None:
    migrate(hardened_db)
    with psycopg.connect(hardened_db, autocommit=True) as conn:
        for name in ROLE_NAMES.values():
            allowed = conn.execute(
                "SELECT has_database_privilege(%s, current_database(), 'TEMPORARY')", (name,)
            ).fetchone()
            assert allowed == (False,), name


def test_app_changes_reach_the_real_outbox_despite_shadows(temp_granted_back: str) -> None:
    app_url = with_user(temp_granted_back, ROLE_NAMES["app"])
    with psycopg.connect(temp_granted_back, autocommit=True) as owner, \
            psycopg.connect(app_url, autocommit=True) as app:
        for statement in _SHADOWS:
            app.execute(statement)  # allowed again: the functions must hold on their own
        row = app.execute(
            "INSERT INTO public.products (sku, name, description, price) "
            "VALUES ('SHADOW-1', 'Kettle', 'boils water', 20) RETURNING id, version"
        ).fetchone()
        assert row is not None
        pid, inserted = int(row[0]), int(row[1])
        assert inserted == _real_last_version(owner)
        app.execute("UPDATE public.products SET name = 'Kettle 2' WHERE id = %s", (pid,))
        updated = _real_last_version(owner)
        assert updated > inserted
        app.execute("DELETE FROM public.products WHERE id = %s", (pid,))
        deleted = _real_last_version(owner)
        assert deleted > updated

        assert _real_outbox(owner) == [
            (pid, "upsert", inserted), (pid, "upsert", updated), (pid, "delete", deleted),
        ]
        # Nothing went to the caller's shadows.
        assert app.execute("SELECT count(*) FROM pg_temp.outbox").fetchone() == (0,)
        assert app.execute(
            "SELECT is_called FROM pg_temp.product_version_seq").fetchone() == (False,)


@pytest.mark.parametrize("role", ["app", "relay"])
def test_outbox_stats_reads_the_real_outbox_despite_a_shadow(temp_granted_back: str,
                                                             role: str) -> None:
    with psycopg.connect(temp_granted_back, autocommit=True) as owner:
        owner.execute("INSERT INTO public.outbox (product_id, op, version) "
                      "VALUES (1, 'upsert', 1), (2, 'upsert', 2)")
    with psycopg.connect(with_user(temp_granted_back, ROLE_NAMES[role]),
                         autocommit=True) as conn:
        conn.execute(_SHADOWS[0])
        conn.execute("INSERT INTO pg_temp.outbox (product_id, op, version) "
                     "SELECT g, 'upsert', g FROM generate_series(1, 5) AS g")
        row = conn.execute("SELECT pending FROM public.outbox_stats()").fetchone()
    assert row == (2,)


def test_every_definer_function_pins_search_path_with_pg_temp_last(hardened_db: str) -> None:
    with psycopg.connect(hardened_db, autocommit=True) as conn:
        functions = conn.execute(
            "SELECT p.proname, p.proconfig FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    assert functions, "no SECURITY DEFINER function found"
    unsafe = []
    for name, config in functions:
        if name in _QUALIFIED_WITHOUT_SET:
            assert not config, f"{name} gained a SET clause (it costs ~3.5 us a COPY row)"
            continue
        paths = [c.split("=", 1)[1] for c in config or [] if c.startswith("search_path=")]
        entries = [p.strip().strip('"') for p in paths[0].split(",")] if paths else []
        if not entries or entries[-1] != "pg_temp" or entries[0] != "pg_catalog":
            unsafe.append((name, config))
    assert unsafe == []
