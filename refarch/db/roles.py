"""The service roles' cloud credentials: set by the migration task, waited for by the services.

On RDS every service logs in as its own least-privilege role (``refarch_app``,
``refarch_relay``, ``refarch_indexer``, created by migration 0002 without a password). The
migration task holds the master URL and each role's URL (one Secrets Manager secret each, see
``infra/database.py``); after migrating it sets each role's password from that role's URL
(:func:`set_role_passwords`). A service's task first runs :func:`wait_for_schema` as its own
role: it succeeds once the role can log in and no migration is pending (migration 0008 lets the
roles read ``schema_migrations``), so no service starts on an old schema.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from refarch.bootstrap import ROLE_NAMES
from refarch.db.connect import connect
from refarch.db.migrations import pending_migrations
from refarch.errors import ConfigError, DatabaseError
from refarch.logs import event

log = logging.getLogger(__name__)


def role_passwords(urls: Mapping[str, str | None]) -> dict[str, str]:
    """``{role name: password}`` from the services' URLs (``{"app": url, ...}``).

    Each URL must name its service's role and carry a password; ConfigError says which does
    not (a URL for the wrong user would give one service another's rights).
    """
    found: dict[str, str] = {}
    for service, url in urls.items():
        if not url:
            continue
        params = conninfo_to_dict(url)
        expected = ROLE_NAMES[service]
        if params.get("user") != expected:
            raise ConfigError(f"REFARCH_{service.upper()}_DATABASE_URL logs in as "
                              f"{params.get('user')!r}, not the {service} role {expected!r}")
        password = params.get("password")
        if not password:
            raise ConfigError(f"REFARCH_{service.upper()}_DATABASE_URL has no password")
        found[expected] = str(password)
    return found


def set_role_passwords(admin_url: str, passwords: Mapping[str, str]) -> list[str]:
    """As the owner at ``admin_url``: let each role log in with its password. Returns the roles
    set. A role that does not exist (migrations not applied) is an error naming it."""
    done = []
    with connect(admin_url, autocommit=True) as conn:
        for role, password in sorted(passwords.items()):
            exists = conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                                  (role,)).fetchone()
            if not exists:
                raise DatabaseError(f"role {role} does not exist: run the migrations first")
            # ALTER ROLE takes no bind parameters: the password is quoted as a literal.
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)))
            done.append(role)
    event(log, "role_passwords_set", roles=",".join(done))
    return done


def wait_for_schema(url: str, timeout: float, *, interval: float = 5.0,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until ``url`` can log in and no migration is pending; returns the seconds waited.

    Raises :class:`~refarch.errors.DatabaseError` with the last reason after ``timeout``.
    """
    started = clock()
    while True:
        try:
            pending = pending_migrations(url)
            if not pending:
                return clock() - started
            reason = f"{len(pending)} migration(s) pending, first {pending[0].filename}"
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        except DatabaseError as exc:
            reason = str(exc)
        if clock() - started >= timeout:
            raise DatabaseError(f"the schema was not ready after {timeout:.0f} s: {reason} "
                                "(has the migration task run? refarch deploy migrate)")
        event(log, "waiting_for_schema", reason=reason)
        sleep(interval)
