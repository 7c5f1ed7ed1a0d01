"""JupyterLab on the notebooks, the way `make lab` / ``refarch lab`` starts it.

On 127.0.0.1 only, rooted at ``notebooks/``, with a random token in the printed URL, and
offline: no news feed or prompt about it, no update check, no extension manager reaching for
PyPI. The kit's
kernel ("refarch", this virtualenv's Python) is registered inside the virtualenv, so it is
there for this JupyterLab and for any other Jupyter pointed at the virtualenv.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from refarch.checkout import checkout_path

#: The notebooks, relative to the repository root.
NOTEBOOKS = Path("notebooks")
#: The kernel the kit registers (``jupyter kernelspec list`` shows it).
KERNEL_NAME = "refarch"
DEFAULT_PORT = 8888


def notebooks_dir() -> Path:
    """Absolute path of the notebooks; ConfigError if this install does not include them."""
    return checkout_path(NOTEBOOKS, "The notebooks", "run `refarch lab` from a clone of the "
                         "repository (pip install -e '.[notebooks]')")


def ensure_kernel() -> Path:
    """Register the kit's kernel in this virtualenv (idempotent); returns its directory."""
    from ipykernel.kernelspec import install

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Path(install(kernel_name=KERNEL_NAME, display_name=f"refarch (Python {version})",
                        prefix=sys.prefix))


#: JupyterLab settings the kit pins in the virtualenv: no news or update prompts (offline).
OFFLINE_SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def ensure_offline_settings() -> Path:
    """Merge :data:`OFFLINE_SETTINGS` into this virtualenv's JupyterLab ``overrides.json``
    (keeping whatever else it holds); returns the file."""
    path = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    for plugin, values in OFFLINE_SETTINGS.items():
        current.setdefault(plugin, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def lab_command(*, port: int, token: str, root: Path) -> list[str]:
    """The JupyterLab server command (loopback, token, offline, root allowed only for root)."""
    command = [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # a taken port is an error, not a different URL
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")  # CI and containers run as root
    return command


def lab_url(port: int, token: str) -> str:
    """Where the lab opens, token included."""
    return f"http://127.0.0.1:{port}/lab?token={token}"


def new_token() -> str:
    """A random token for one lab session."""
    return secrets.token_urlsafe(24)
