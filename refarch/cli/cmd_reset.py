"""``refarch reset``: delete the local state (Postgres data, index, logs) after asking."""

from __future__ import annotations

import argparse
import sys

from refarch.cli.args import Subparsers
from refarch.errors import InputError
from refarch.local.reset import describe, plan_reset, reset
from refarch.settings import Settings


def _run(args: argparse.Namespace, settings: Settings) -> int:
    plan = plan_reset(settings)
    print(describe(plan), flush=True)
    if plan.empty:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("refarch reset deletes data: pass --yes to confirm (stdin is not "
                             "a terminal, so there is no one to ask); nothing was deleted")
        if input("Delete all of this? Type yes to confirm: ").strip().lower() != "yes":
            print("refarch reset: nothing deleted")
            return 1
    gone = reset(settings, plan)
    print(f"refarch reset: deleted {len(gone)} path(s); `refarch up` or the notebooks start "
          "afresh")
    return 0


def register(subparsers: Subparsers) -> None:
    """Add the ``reset`` sub-command."""
    parser = subparsers.add_parser(
        "reset",
        help="delete the local state (Postgres data, index, logs) for a clean start; asks first",
        description=(
            "Stop the local stack and Postgres, then delete the local Postgres cluster, the "
            "local index's data and the stack's logs and state. Keeps the ONNX model export "
            "and deploy/ (the Pulumi state of cloud resources); never touches DATABASE_URL's "
            "server. Lists what goes and asks first."
        ),
    )
    parser.add_argument("--yes", action="store_true", help="do not ask (scripts, CI)")
    parser.set_defaults(func=_run)
