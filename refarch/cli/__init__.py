"""The ``refarch`` command line.

Each sub-command lives in a module under :mod:`refarch.cli.args` that exposes
``register(subparsers)``; this module only assembles them, reads the settings once and turns
refarch's own errors into a one-line message and exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from refarch import __version__
from refarch.errors import RefarchError
from refarch.extras import missing_extra
from refarch.logs import configure
from refarch.redact import redact_url
from refarch.settings import Settings

#: Modules that contribute sub-commands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "refarch.cli.cmd_doctor",
    "refarch.cli.cmd_db",
    "refarch.cli.cmd_load",
    "refarch.cli.cmd_stack",
    "refarch.cli.cmd_reset",
    "refarch.cli.cmd_pipeline",
    "refarch.cli.cmd_search",
    "refarch.cli.cmd_model",
    "refarch.cli.cmd_index",
    "refarch.cli.cmd_app",
    "refarch.cli.cmd_lab",
    "refarch.cli.cmd_deploy",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="refarch",
        description=(
            "Semantic search over a Postgres table of products, with a vector index kept in "
            "sync. Runs locally with no accounts (embedded Postgres and index) or on AWS."
        ),
        epilog="Configuration comes from environment variables; see the README's table.",
    )
    parser.add_argument("--version", action="version", version=f"refarch {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
        configure(settings.log_level)
        result = args.func(args, settings)
    except RefarchError as exc:
        print(f"refarch: error: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        print(f"refarch: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refarch: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
