"""The cloud's role credentials on a real server: the migration task sets each service role's
password from its URL, and a service's wait-for-schema passes only on a current schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from refarch.bootstrap import with_user
from refarch.db.migrations import available_migrations
from refarch.db.roles import role_passwords, set_role_passwords, wait_for_schema
from refarch.errors import ConfigError, DatabaseError


def test_the_migration_task_sets_each_role_password(db_url: str) -> None:
    urls = {"app": "postgresql://refarch_app:AppPw0123456789@db.example:5432/refarch"
                   "?sslmode=verify-full",
            "relay": "postgresql://refarch_relay:RelayPw0123456789@db.example:5432/refarch"}
    passwords = role_passwords({**urls, "indexer": None})
    assert passwords == {"refarch_app": "AppPw0123456789", "refarch_relay": "RelayPw0123456789"}
    try:
        assert set_role_passwords(db_url, passwords) == ["refarch_app", "refarch_relay"]
        with psycopg.connect(db_url) as conn:
            rows = dict(conn.execute(
                "SELECT rolname, rolpassword FROM pg_catalog.pg_authid "
                "WHERE rolname IN ('refarch_app', 'refarch_relay')").fetchall())
        # Stored as SCRAM verifiers, never as the password itself.
        assert all(str(v).startswith("SCRAM-SHA-256$") for v in rows.values()), rows
        assert "AppPw0123456789" not in str(rows)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            for role in passwords:
                conn.execute(f"ALTER ROLE {role} PASSWORD NULL")


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://refarch:pw@db/refarch", "logs in as 'refarch', not the app role"),
    ("postgresql://refarch_app@db/refarch", "has no password"),
])
def test_a_wrong_role_url_is_refused_before_anything_runs(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        role_passwords({"app": url})


def test_a_missing_role_is_an_error_naming_it(db_url: str) -> None:
    with pytest.raises(DatabaseError, match="role refarch_nobody does not exist"):
        set_role_passwords(db_url, {"refarch_nobody": "x"})


def test_wait_for_schema_as_the_role(new_database: Callable[..., str]) -> None:
    migrated = new_database()
    assert wait_for_schema(with_user(migrated, "refarch_relay"), timeout=5) < 5
    # An empty database: the role can log in, but every migration is pending.
    empty = new_database(migrated=False)
    ticks = iter(range(100))
    with pytest.raises(DatabaseError, match=rf"{len(available_migrations())} migration\(s\) "
                                            "pending, first 0001_products.sql"):
        wait_for_schema(with_user(empty, "refarch_app"), timeout=2, interval=0,
                        clock=lambda: float(next(ticks)), sleep=lambda s: None)


def test_the_migration_task_and_the_wait_from_the_cli(
        db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # What the cloud's containers run: `migrate --role-passwords` with the master URL and the
    # role URLs, then `db wait --role relay` with the relay's own URL.
    import logging

    from refarch.cli import main

    monkeypatch.setenv("REFARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    relay_url = with_user(db_url, "refarch_relay")
    monkeypatch.setenv("REFARCH_RELAY_DATABASE_URL",
                       relay_url.replace("user=refarch_relay", "user=refarch_relay password=RelayPw0123"))
    try:
        assert main(["db", "migrate", "--role-passwords"]) == 0
        out = capsys.readouterr().out
        assert "schema was already up to date" in out and "passwords set for refarch_relay" in out
        monkeypatch.setenv("REFARCH_RELAY_DATABASE_URL", relay_url)
        assert main(["db", "wait", "--role", "relay", "--timeout", "5"]) == 0
        assert "schema ready for relay" in capsys.readouterr().out
        monkeypatch.delenv("REFARCH_RELAY_DATABASE_URL")
        monkeypatch.setenv("REFARCH_APP_DATABASE_URL", "postgresql://refarch:pw@db/refarch")
        assert main(["db", "migrate", "--role-passwords"]) == 2
        assert "not the app role 'refarch_app'" in capsys.readouterr().err
        assert not (tmp_path / "home").exists()  # refused before touching any database
    finally:
        logging.getLogger("refarch").handlers.clear()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ALTER ROLE refarch_relay PASSWORD NULL")
