"""``refarch app``: serve the Streamlit app (search, live editing, sync status)."""

from __future__ import annotations

import argparse

from refarch.cli.args import Subparsers
from refarch.settings import Settings
from refarch.webapp.runner import app_url, exec_app


def _run(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.app_host
    port = args.port or settings.app_port
    print(f"refarch app: serving {app_url(settings, host=host, port=port)}", flush=True)
    exec_app(settings, host=host, port=port)
    return 0  # pragma: no cover - exec_app does not return


def register(subparsers: Subparsers) -> None:
    """Add the ``app`` sub-command."""
    parser = subparsers.add_parser(
        "app",
        help="serve the Streamlit app (search, edit products, sync status)",
        description=(
            "Serve the Streamlit app against the database and index the settings point at. "
            "Binds 127.0.0.1 unless --host or REFARCH_APP_HOST says otherwise. `refarch up` "
            "starts it for you; use this to run the app on its own (or in a container)."
        ),
    )
    parser.add_argument("--host", help="address to bind (default: REFARCH_APP_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: REFARCH_APP_PORT, 8501)")
    parser.set_defaults(func=_run)
