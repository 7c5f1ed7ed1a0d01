"""Versioned schema migrations: numbered SQL files applied once each, in order.

Files live in ``refarch/db/sql/`` and are named ``NNNN_what_it_does.sql`` (four digits, then
lower-case words). Each file runs in its own transaction together with its row in
``schema_migrations`` (version, name, checksum, applied_at), so a failing file leaves nothing
half-applied. :func:`migrate` is idempotent and safe to run from several processes at once
(an advisory lock serialises them). An applied file whose content later changes is an error:
add a new file instead of editing one that databases have already run.

After the files, :func:`migrate` revokes ``TEMPORARY`` on the database from ``PUBLIC`` and the
service roles, on every run: a temporary table is how a caller would shadow the objects the
``SECURITY DEFINER`` triggers write (see ``0006_definer_search_path.sql``), no service needs
one, and database privileges are not copied by ``CREATE DATABASE ... TEMPLATE``, so a file
applied once could not keep them. The database's owner (who runs loads, which stage through a
temporary table) and superusers keep it; grant it back to other roles explicitly if they need it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from refarch.db.connect import connect
from refarch.errors import MigrationError
from refarch.logs import event

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: Advisory lock key held while migrating (any constant; "refarch" in ASCII).
_LOCK_KEY = 0x72656661726368

# The service roles of 0002 (bootstrap.ROLE_NAMES), where they exist.
_REVOKE_TEMPORARY = """
DO $revoke$
DECLARE
    role_name text;
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    FOREACH role_name IN ARRAY ARRAY['refarch_app', 'refarch_relay', 'refarch_indexer'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM %I', current_database(),
                           role_name);
        END IF;
    END LOOP;
END
$revoke$
"""
_OWNS_DATABASE = """
SELECT pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
"""

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One SQL file of the schema history."""

    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text, recorded when applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        """The file name, e.g. ``0001_products.sql``."""
        return f"{self.version:04d}_{self.name}.sql"


def available_migrations(directory: Path | None = None) -> list[Migration]:
    """The migrations shipped with refarch (or found in ``directory``), in version order.

    Raises :class:`MigrationError` for a badly named ``.sql`` file or a version used twice.
    """
    source: Any = directory if directory is not None else resources.files("refarch.db") / "sql"
    found: dict[int, Migration] = {}
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if not match:
            raise MigrationError(
                f"migration file {entry.name!r} is not named NNNN_lower_case_words.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"migrations {found[version].filename} and {entry.name} share version {version}"
            )
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def applied_migrations(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str]]:
    """``{version: (name, checksum)}`` of the migrations applied to the connected database."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def pending_migrations(url: str, directory: Path | None = None) -> list[Migration]:
    """The migrations not yet applied to the database at ``url``."""
    with connect(url, autocommit=True) as conn:
        applied = applied_migrations(conn)
    return [m for m in available_migrations(directory) if m.version not in applied]


def migrate(url: str, directory: Path | None = None) -> list[Migration]:
    """Apply every pending migration to the database at ``url``; returns those applied now.

    Raises :class:`MigrationError` when an applied file was edited since, or when a file fails
    (naming it and the database's error; that file's changes are rolled back).
    """
    migrations = available_migrations(directory)
    applied_now: list[Migration] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_CREATE_TABLE)
            applied = applied_migrations(conn)
            for migration in migrations:
                if migration.version in applied:
                    name, checksum = applied[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.filename} changed after it was applied to "
                            f"this database (as {migration.version:04d}_{name}.sql); restore the "
                            "original file and put the change in a new migration"
                        )
                    continue
                started = time.monotonic()
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)  # no parameters: runs as a script
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.filename} failed and was rolled back: "
                        f"{str(exc).strip()}"
                    ) from exc
                event(log, "migration_applied", version=migration.version, migration=migration.name,
                      seconds=time.monotonic() - started)
                applied_now.append(migration)
            _revoke_temporary(conn)
            unknown = sorted(set(applied) - {m.version for m in migrations})
            if unknown:
                event(log, "migrations_unknown_to_this_version", level=logging.WARNING,
                      versions=",".join(map(str, unknown)))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _revoke_temporary(conn: psycopg.Connection[Any]) -> None:
    """Revoke ``TEMPORARY`` from PUBLIC and the service roles (see the module docstring)."""
    row = conn.execute(_OWNS_DATABASE).fetchone()
    if not row or not row[0]:
        event(log, "temporary_not_revoked", level=logging.WARNING,
              reason="the migrating role does not own the database",
              fix="as its owner: REVOKE TEMPORARY ON DATABASE <db> FROM PUBLIC")
        return
    conn.execute(_REVOKE_TEMPORARY)
