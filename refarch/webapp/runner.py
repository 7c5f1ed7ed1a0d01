"""How the Streamlit app is started: the command line, its URL and ``refarch app``.

``refarch up`` runs :func:`streamlit_command` as one of its supervised processes; the container
image runs ``refarch app`` with ``REFARCH_APP_HOST=0.0.0.0``. Both start the same page,
``app/streamlit_app.py``, with the same settings (read from the environment by the page).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from refarch.checkout import checkout_path
from refarch.settings import Settings

#: The page, relative to the repository (or image) root.
APP_SCRIPT = Path("app") / "streamlit_app.py"


def app_script() -> Path:
    """Absolute path of the app's page; ConfigError if this install does not include it."""
    return checkout_path(APP_SCRIPT, "The Streamlit app", "run refarch from a clone of the "
                         "repository (pip install -e .) or from the container image, which both "
                         "include app/")


def streamlit_command(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> list[str]:
    """The command that serves the app on ``host:port`` (default: the settings' app address).

    Headless, no usage statistics, no file watcher, and error details hidden from the browser:
    the page shows its own messages, and a bug never shows a traceback to users.
    """
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.address",
        host or settings.app_host,
        "--server.port",
        str(port or settings.app_port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--global.developmentMode",
        "false",
    ]


def app_url(settings: Settings, *, host: str | None = None, port: int | None = None) -> str:
    """The URL to open the app at (a wildcard bind address is shown as 127.0.0.1)."""
    shown = host or settings.app_host
    if shown in {"0.0.0.0", "::", ""}:
        shown = "127.0.0.1"
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port or settings.app_port}/"


def exec_app(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Replace this process with the Streamlit server (signals then reach Streamlit directly)."""
    command = streamlit_command(settings, host=host, port=port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
