"""``refarch db start|stop|status|url|migrate|wait``: the local PostgreSQL server and the schema."""

from __future__ import annotations

import argparse
import sys

from refarch.bootstrap import database_url, local_postgres
from refarch.cli.args import Subparsers
from refarch.db.connect import connect, redact_url
from refarch.db.migrations import migrate
from refarch.errors import DatabaseError
from refarch.settings import Settings

#: ``db status`` exit code when the server is not running (as ``pg_ctl status``).
NOT_RUNNING = 3


def _start(args: argparse.Namespace, settings: Settings) -> int:
    server = local_postgres(settings)
    if server is None:
        print(f"DATABASE_URL is set: using {redact_url(settings.database_url or '')}; "
              "no local server is started")
        return 0
    was_running = server.status().running
    status = server.start()
    print(f"PostgreSQL {'was already' if was_running else 'is now'} running (pid {status.pid})")
    print(f"url: {status.url}")
    return 0


def _stop(args: argparse.Namespace, settings: Settings) -> int:
    server = local_postgres(settings)
    if server is None:
        print("DATABASE_URL is set: refarch does not manage that server; nothing to stop")
        return 0
    stopped = server.stop()
    print("PostgreSQL stopped" if stopped else "PostgreSQL was not running")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    server = local_postgres(settings)
    if server is None:
        url = redact_url(settings.database_url or "")
        try:
            with connect(settings.database_url or "", connect_timeout=5) as conn:
                version = conn.execute("SHOW server_version").fetchone()
        except DatabaseError as exc:
            print(f"state:    unreachable ({exc})")
            print(f"url:      {url} (DATABASE_URL; not managed by refarch)")
            return NOT_RUNNING
        print(f"state:    reachable (PostgreSQL {version[0] if version else '?'})")
        print(f"url:      {url} (DATABASE_URL; not managed by refarch)")
        return 0
    status = server.status()
    print("\n".join(status.describe()))
    return 0 if status.running else NOT_RUNNING


def _url(args: argparse.Namespace, settings: Settings) -> int:
    server = local_postgres(settings)
    if server is None:
        print(settings.database_url)
        return 0
    status = server.status()
    print(server.tcp_url() if args.tcp else status.url)
    if not status.running:
        print("refarch: note: the server is not running; start it with `refarch db start`",
              file=sys.stderr)
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    passwords = {}
    if args.role_passwords:
        from refarch.db.roles import role_passwords

        # Checked before migrating: a wrong URL must not leave a half-done deploy.
        passwords = role_passwords({"app": settings.app_database_url,
                                    "relay": settings.relay_database_url,
                                    "indexer": settings.indexer_database_url})
        if not passwords:
            raise DatabaseError("--role-passwords: no REFARCH_<ROLE>_DATABASE_URL is set")
    url = database_url(settings)
    applied = migrate(url)
    for migration in applied:
        print(f"applied {migration.filename}")
    print("schema is up to date" if applied else "schema was already up to date")
    if passwords:
        from refarch.db.roles import set_role_passwords

        roles = set_role_passwords(url, passwords)
        print(f"passwords set for {', '.join(roles)}")
    return 0


def _wait(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import role_url
    from refarch.db.roles import wait_for_schema

    waited = wait_for_schema(role_url(settings, args.role), args.timeout)
    print(f"schema ready for {args.role} after {waited:.0f} s")
    return 0


def register(subparsers: Subparsers) -> None:
    """Add ``refarch db`` and its actions."""
    parser = subparsers.add_parser(
        "db",
        help="run the local PostgreSQL server and apply the schema",
        description=(
            "Manage the local PostgreSQL server refarch runs under REFARCH_HOME (a unix socket "
            "only, TCP 127.0.0.1 with REFARCH_PG_TCP=1; as root it runs as an unprivileged "
            "user). With DATABASE_URL set, that server is used and nothing is started."
        ),
    )
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    start = actions.add_parser(
        "start", help="start the server (initialising it on first use); no-op if running",
        description="Start the local server and create the refarch database. Idempotent.",
    )
    start.set_defaults(func=_start)
    stop = actions.add_parser(
        "stop", help="stop the server (fast shutdown); no-op if stopped",
        description="Stop the local server: open sessions are ended, data is kept. Idempotent.",
    )
    stop.set_defaults(func=_stop)
    status = actions.add_parser(
        "status", help="show whether it runs, its pid, socket, URL and data directory",
        description=f"Show the server's state. Exit code 0 when running, {NOT_RUNNING} when not.",
    )
    status.set_defaults(func=_status)
    url = actions.add_parser(
        "url", help="print the libpq URL (e.g. psql \"$(refarch db url)\")",
        description="Print the connection URL of the database (does not start the server).",
    )
    url.add_argument("--tcp", action="store_true",
                     help="the TCP URL with the password (needs REFARCH_PG_TCP=1)")
    url.set_defaults(func=_url)
    migrate_parser = actions.add_parser(
        "migrate", help="apply pending schema migrations (starts the local server if needed)",
        description="Apply the numbered SQL migrations not yet applied. Idempotent.",
    )
    migrate_parser.add_argument(
        "--role-passwords", action="store_true",
        help="then let each service role log in with the password of its "
             "REFARCH_<ROLE>_DATABASE_URL (the cloud's migration task)")
    migrate_parser.set_defaults(func=_migrate)
    wait = actions.add_parser(
        "wait", help="wait until a service role can log in and no migration is pending",
        description="Connect as the service's role (its REFARCH_<ROLE>_DATABASE_URL) until it "
                    "logs in and the schema is current; exit 1 after --timeout seconds.",
    )
    wait.add_argument("--role", required=True, choices=("app", "relay", "indexer"))
    wait.add_argument("--timeout", type=float, default=900.0, help="seconds (default 900)")
    wait.set_defaults(func=_wait)
