"""``refarch doctor``: check what a workshop laptop needs before the first notebook."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from refarch.cli.args import Subparsers
from refarch.doctor import blocking, format_checks, run_checks
from refarch.settings import Settings


def _run(args: argparse.Namespace, settings: Settings) -> int:
    checks = run_checks(settings)
    if args.json:
        print(json.dumps({"ok": not blocking(checks), "checks": [asdict(c) for c in checks]},
                         indent=2))
    else:
        print(format_checks(checks))
    return 1 if blocking(checks) else 0


def register(subparsers: Subparsers) -> None:
    """Add the ``doctor`` sub-command."""
    parser = subparsers.add_parser(
        "doctor",
        help="check this machine for the workshop (Python, disk, ports, Postgres, model, JupyterLab)",
        description=(
            "Check what the notebooks and the local stack need: the Python version, write "
            "access to REFARCH_HOME and free disk, the ports the stack uses, PostgreSQL server "
            "binaries that run, the model embedding offline, JupyterLab and the kit's kernel. "
            "Every warning or failure names its fix; exit code 1 when something blocks."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(func=_run)
