"""The local stack: ``up``, ``down``, ``status``, ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from refarch.cli.args import Subparsers, positive_int
from refarch.settings import Settings

if TYPE_CHECKING:
    from refarch.local.stack import LocalStack
    from refarch.search import SearchHit

#: The example query ``refarch demo`` answers.
DEMO_QUERY = "keep my coffee hot on the commute"


def _up_argv(args: argparse.Namespace) -> list[str]:
    argv: list[str] = []
    if args.csv:
        argv += ["--csv", args.csv]
    if args.generate:
        argv += ["--generate", str(args.generate)]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    if args.no_app:
        argv.append("--no-app")
    if args.no_progress:
        argv.append("--no-progress")
    return argv


def _print_ready(stack: LocalStack) -> None:
    from refarch.local.status import collect_status

    report = collect_status(stack.settings)
    print(f"refarch up: ready: {report.products} products, {report.index_vectors} vectors", flush=True)
    print(f"  database_url: {report.database_url}")
    print(f"  index_host:   {report.index_host}")
    if report.app_url:
        print(f"  app:          {report.app_url}")
    print(f"  logs:         {stack.paths.logs}")
    print("Ctrl-C stops everything.", flush=True)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.local.stack import (
        LocalStack,
        StackError,
        install_stop_signals,
        running_supervisor,
        start_detached,
    )

    if args.detach:
        state = start_detached(settings, _up_argv(args), progress=not args.no_progress)
        print(f"refarch up: running in the background (pid {state['supervisor_pid']}); "
              "`refarch status` shows it, `refarch down` stops it")
        return 0
    if running_supervisor(settings):
        raise StackError("the local stack is already running for this REFARCH_HOME "
                         "(refarch status; refarch down stops it)")
    stop = threading.Event()
    install_stop_signals(stop)
    stack = LocalStack(settings, workers=args.workers, with_app=not args.no_app,
                       progress=not args.no_progress)
    stack.run(stop, csv=args.csv, generate=args.generate, on_ready=args.on_ready or _print_ready)
    print("refarch up: stopped", file=sys.stderr)
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.local.stack import stop_stack

    was_running = stop_stack(settings)
    print("refarch down: stopped" if was_running else "refarch down: nothing was running (cleaned up)")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.local.status import collect_status, format_status

    report = collect_status(settings)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        print(format_status(report))
    return 0


def _demo_ready(stack: LocalStack) -> None:
    from refarch.bootstrap import make_embedder, make_index
    from refarch.db.connect import connect
    from refarch.search import search

    _print_ready(stack)
    assert stack.admin_url is not None  # set once the stack is ready
    index = make_index(stack.settings)
    try:
        with connect(stack.admin_url, autocommit=True) as conn:
            result = search(DEMO_QUERY, embedder=make_embedder(stack.settings), index=index,
                            conn=conn, top_k=5)
    finally:
        index.close()
    print(f"\nrefarch search {DEMO_QUERY!r}")
    print(format_hits(result.hits))
    print("\nTry your own: refarch search \"QUERY\" (in another terminal). Ctrl-C stops the demo.",
          flush=True)


def format_hits(hits: Sequence[SearchHit]) -> str:
    """Ranked results as a small table."""
    if not hits:
        return "(no results)"
    lines = [f"{'#':>2}  {'score':>6}  {'price':>9}  {'category':<18} name (sku)"]
    for rank, hit in enumerate(hits, 1):
        lines.append(
            f"{rank:>2}  {hit.score:6.3f}  {float(hit.price):9.2f}  {(hit.category or '-')[:18]:<18} "
            f"{hit.name} ({hit.sku})"
        )
    return "\n".join(lines)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    args.detach = False
    args.on_ready = _demo_ready
    return _up(args, settings)


def _add_up_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", metavar="PATH", help="initial catalog from a CSV file (first run)")
    source.add_argument("--generate", type=positive_int, metavar="N",
                        help="initial catalog of N generated products (first run; default 10,000)")
    parser.add_argument("--workers", type=positive_int, help="indexer workers (REFARCH_INDEXER_WORKERS)")
    parser.add_argument("--no-app", action="store_true", help="do not start the Streamlit app")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(on_ready=None)


def register(subparsers: Subparsers) -> None:
    """Add ``up``, ``down``, ``status`` and ``demo``."""
    p = subparsers.add_parser(
        "up", help="start and supervise the whole local stack",
        description="Start Postgres, the index server, the relay, the indexer workers, periodic "
                    "reconcile and the app; load the initial catalog on first use and wait until "
                    "it is searchable; restart crashed processes; Ctrl-C or SIGTERM stops all. "
                    "Logs go to REFARCH_HOME/logs.",
    )
    _add_up_arguments(p)
    p.add_argument("--detach", action="store_true", help="run in the background (refarch down stops it)")
    p.set_defaults(func=_up)

    p = subparsers.add_parser("down", help="stop the local stack started by `refarch up`")
    p.set_defaults(func=_down)

    p = subparsers.add_parser(
        "status", help="products, outbox, queue, DLQ, index, drift, freshness, processes",
    )
    p.add_argument("--json", action="store_true", help="print JSON (keys include database_url, index_host)")
    p.set_defaults(func=_status)

    p = subparsers.add_parser(
        "demo", help="`up` with 10,000 products, then answer an example query (make demo)",
        description=f"Bring the local stack up (first run: 10,000 generated products, synced), "
                    f"print ranked results for {DEMO_QUERY!r}, keep running until Ctrl-C.",
    )
    _add_up_arguments(p)
    p.set_defaults(func=_demo)
