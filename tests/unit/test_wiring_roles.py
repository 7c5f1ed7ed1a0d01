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


def test_only_reconcile_of_the_local_services_gets_the_owner_url() -> None:
    from refarch.local.stack import service_env, service_processes, with_owner_url

    settings = Settings.from_env({"REFARCH_RECONCILE_INTERVAL": "30"})
    env = service_env(settings, LOCAL)
    assert "DATABASE_URL" not in env
    assert {key: conninfo_to_dict(env[key])["user"] for key in env if key.endswith("DATABASE_URL")} == {
        "REFARCH_APP_DATABASE_URL": "refarch_app",
        "REFARCH_RELAY_DATABASE_URL": "refarch_relay",
        "REFARCH_INDEXER_DATABASE_URL": "refarch_indexer",
    }
    specs = with_owner_url(service_processes(settings, workers=2, with_app=False), LOCAL)
    owners = {spec.name for spec in specs if "DATABASE_URL" in spec.env}
    assert owners == {"reconcile"} and {"relay", "indexer-1", "indexer-2"} <= {s.name for s in specs}
