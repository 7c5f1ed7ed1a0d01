"""``refarch lab``: JupyterLab on the notebooks (``make lab`` runs it)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from refarch.cli.args import Subparsers, positive_int
from refarch.errors import InputError
from refarch.settings import Settings
from refarch.tutorial.lab import (
    DEFAULT_PORT,
    ensure_kernel,
    ensure_offline_settings,
    lab_command,
    lab_url,
    new_token,
    notebooks_dir,
)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    root = args.notebooks.resolve() if args.notebooks else notebooks_dir()
    if not root.is_dir():
        raise InputError(f"--notebooks {args.notebooks}: no such directory")
    if importlib.util.find_spec("jupyterlab") is None:  # the CLI names the 'notebooks' profile
        raise ModuleNotFoundError("No module named 'jupyterlab'", name="jupyterlab")

    kernel = ensure_kernel()
    ensure_offline_settings()
    token = new_token()
    print(f"refarch lab: kernel 'refarch' registered in {kernel}", flush=True)
    print(f"refarch lab: serving {root} at {lab_url(args.port, token)}", flush=True)
    print("refarch lab: Ctrl-C stops it", flush=True)
    command = lab_command(port=args.port, token=token, root=root)
    sys.stdout.flush()
    os.execv(command[0], command)
    return 0  # pragma: no cover - execv does not return


def register(subparsers: Subparsers) -> None:
    """Add the ``lab`` sub-command."""
    parser = subparsers.add_parser(
        "lab",
        help="JupyterLab on the notebooks (127.0.0.1, the kit's kernel)",
        description=(
            "Start JupyterLab on 127.0.0.1 in notebooks/, with the kit's kernel registered in "
            "this virtualenv and a random token in the printed URL. Offline: no news, update "
            "checks or extension downloads. Needs the 'notebooks' install profile."
        ),
    )
    parser.add_argument("--port", type=positive_int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}); a taken port is an error")
    parser.add_argument("--notebooks", type=Path, metavar="DIR",
                        help="serve this directory instead of the clone's notebooks/ (a copy "
                             "to work in, for instance)")
    parser.set_defaults(func=_run)
