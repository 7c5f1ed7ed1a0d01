"""Which database URL each service connects with (refarch.bootstrap.role_url)."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from refarch.bootstrap import role_url, with_user
from refarch.settings import Settings

LOCAL = "postgresql:///refarch?host=%2Ftmp%2Fx&port=5432&user=refarch"


def test_with_user_switches_the_user_and_drops_someone_elses_password() -> None:
    params = conninfo_to_dict(with_user("postgresql://admin:secret@db:5432/refarch", "refarch_relay"))
    assert params["user"] == "refarch_relay" and "password" not in params
    assert params["host"] == "db" and params["dbname"] == "refarch"


def test_local_services_connect_as_their_roles() -> None:
    settings = Settings.from_env({})
    for role, user in (("app", "refarch_app"), ("relay", "refarch_relay"), ("indexer", "refarch_indexer")):
        assert conninfo_to_dict(role_url(settings, role, LOCAL))["user"] == user


def test_with_database_url_a_role_needs_its_own_url() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://admin:pw@rds/refarch",
                                  "REFARCH_RELAY_DATABASE_URL": "postgresql://relay:pw2@rds/refarch"})
    assert role_url(settings, "relay") == "postgresql://relay:pw2@rds/refarch"
    assert role_url(settings, "indexer") == "postgresql://admin:pw@rds/refarch"  # falls back
