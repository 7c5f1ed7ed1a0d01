"""The sync pipeline's services and tools: ``relay``, ``indexer``, ``backfill``, ``reconcile``,
``sync-wait``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import threading
from typing import Any

from refarch.cli.args import positive_int as _positive
from refarch.logs import event
from refarch.settings import Settings

log = logging.getLogger("refarch.cli.args")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _stop_on_signals() -> threading.Event:
    from refarch.local.stack import install_stop_signals

    stop = threading.Event()
    install_stop_signals(stop)
    return stop


# -- relay -----------------------------------------------------------------------------------


def _relay(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import connector, make_queue, role_url
    from refarch.pipeline import relay

    url = role_url(settings, "relay")
    queue = make_queue(settings, url)
    stop = _stop_on_signals()
    try:
        relay.run(
            connector(url), queue,
            batch_size=args.batch_size or settings.relay_batch_size,
            poll_seconds=float(args.poll_seconds or settings.relay_poll_seconds),
            stop=stop,
        )
    finally:
        queue.close()
    return 0


# -- indexer ---------------------------------------------------------------------------------


def _indexer(args: argparse.Namespace, settings: Settings) -> int:
    workers = args.workers or settings.indexer_workers
    if workers > 1:
        return _indexer_pool(settings, workers)
    if args.embed_threads:
        settings = dataclasses.replace(settings, embed_threads=args.embed_threads)
    from refarch.bootstrap import make_indexer
    from refarch.pipeline import indexer

    stop = _stop_on_signals()
    worker = make_indexer(settings, batch_size=args.batch_size)
    event(log, "indexer_started", batch_size=worker.batch_size, model=settings.model)
    try:
        indexer.run(worker, stop=stop)
    finally:
        worker.close()
    return 0


def _indexer_pool(settings: Settings, workers: int) -> int:
    """K indexer processes under a supervisor (restarted when they crash)."""
    from refarch.local.stack import StackPaths, indexer_processes
    from refarch.local.supervisor import Supervisor

    stop = _stop_on_signals()
    supervisor = Supervisor(indexer_processes(settings, workers, prefix="indexer-pool"),
                            StackPaths(settings.home).logs)
    supervisor.start_all()
    event(log, "indexer_pool_started", workers=workers, logs=StackPaths(settings.home).logs)
    try:
        while not stop.wait(0.5):
            supervisor.poll()
    finally:
        supervisor.stop_all()
    return 0


# -- backfill --------------------------------------------------------------------------------


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import make_queue, role_url
    from refarch.db.connect import connect
    from refarch.pipeline.backfill import backfill

    url = role_url(settings, "relay")
    queue = make_queue(settings, url)
    try:
        with connect(url, autocommit=True) as conn:
            result = backfill(conn, queue, batch_size=args.batch_size, progress=not args.no_progress)
    finally:
        queue.close()
    print(f"backfill: enqueued {result.enqueued} products in {result.seconds:.1f} s "
          f"(run {result.run}); the indexers take it from here (refarch sync-wait waits for them)")
    return 0


# -- reconcile -------------------------------------------------------------------------------


def _reconcile_once(settings: Settings, url: str, repair: bool) -> Any:
    from refarch.bootstrap import make_index, make_queue
    from refarch.db.connect import connect
    from refarch.embeddings import product_text
    from refarch.pipeline.reconcile import reconcile

    index = make_index(settings)
    queue = make_queue(settings, url) if repair else None
    try:
        with connect(url, autocommit=True) as conn:
            return reconcile(conn, index, text_of=product_text, repair_queue=queue)
    finally:
        if queue is not None:
            queue.close()
        index.close()


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import database_url

    url = database_url(settings)
    if args.every:
        stop = _stop_on_signals()
        while not stop.wait(args.every):
            try:
                _reconcile_once(settings, url, args.repair)
            except Exception as exc:  # noqa: BLE001 - a periodic job survives a bad round
                event(log, "reconcile_failed", level=logging.WARNING, error=str(exc))
        return 0
    report = _reconcile_once(settings, url, args.repair)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.summary())
        for kind in ("missing", "stale", "orphaned"):
            ids = getattr(report, kind)
            if ids:
                more = f" (+{len(ids) - 20} more)" if len(ids) > 20 else ""
                print(f"  {kind}: {', '.join(map(str, ids[:20]))}{more}")
        if report.drift and not args.repair:
            print("run `refarch reconcile --repair` to enqueue the fixes")
    return 1 if report.drift else 0


# -- sync-wait -------------------------------------------------------------------------------


def _sync_wait(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.bootstrap import database_url
    from refarch.pipeline.progress import wait_for_sync

    state = wait_for_sync(settings, database_url(settings), timeout=args.timeout,
                          progress=not args.no_progress)
    if args.json:
        print(json.dumps(state.to_json(), indent=2))
    elif state.synced:
        print(f"synced: {state.products} products, {state.vectors} vectors "
              f"({state.seconds:.1f} s)")
    else:
        print(f"not synced after {state.seconds:.1f} s: outbox {state.outbox_pending}, "
              f"queue {state.queue_visible} visible / {state.queue_in_flight} in flight, "
              f"{state.products} products vs {state.vectors} vectors")
    if state.dead_letters:
        print(f"warning: {state.dead_letters} messages are in the dead-letter queue "
              "(their products are not searchable; see refarch status)")
    return 0 if state.synced else 1


def register(subparsers: Any) -> None:
    """Add ``relay``, ``indexer``, ``backfill``, ``reconcile`` and ``sync-wait``."""
    p = subparsers.add_parser(
        "relay", help="move captured changes from the outbox to the queue (a service)",
        description="Claim outbox rows in batches (FOR UPDATE SKIP LOCKED; run as many relays "
                    "as you like), publish one message per changed product, delete the rows once "
                    "the queue acknowledged. Wakes on NOTIFY and polls. Stops on SIGTERM/Ctrl-C.",
    )
    p.add_argument("--batch-size", type=_positive, help="outbox rows per step (REFARCH_RELAY_BATCH_SIZE)")
    p.add_argument("--poll-seconds", type=_seconds, help="poll interval (REFARCH_RELAY_POLL_SECONDS)")
    p.set_defaults(func=_relay)

    p = subparsers.add_parser(
        "indexer", help="embed changed products and write them to the vector index (a service)",
        description="Receive change messages, re-read the rows from Postgres, embed only texts "
                    "whose hash changed, upsert or delete vectors (never older over newer), "
                    "dead-letter what keeps failing. SIGTERM finishes the batch in hand first.",
    )
    p.add_argument("--workers", type=_positive, help="worker processes (REFARCH_INDEXER_WORKERS)")
    p.add_argument("--batch-size", type=_positive, help="messages per batch (REFARCH_INDEXER_BATCH_SIZE)")
    p.add_argument("--embed-threads", type=_positive, help=argparse.SUPPRESS)
    p.set_defaults(func=_indexer)

    p = subparsers.add_parser(
        "backfill", help="enqueue every product for (re)indexing",
        description="Walk the products table in id order and enqueue one message per product, "
                    "in short reads that never block writers. Use it for a new or wiped index.",
    )
    p.add_argument("--batch-size", type=_positive, default=1000, help="rows per read (1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_backfill)

    p = subparsers.add_parser(
        "reconcile", help="compare Postgres with the index; --repair enqueues the fixes",
        description="Report products missing from the index, stale vectors (other version or "
                    "text) and orphaned vectors. Exit code 1 when there is drift.",
    )
    p.add_argument("--repair", action="store_true", help="enqueue a fix for every drifted product")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--every", type=_seconds, help="run every N seconds until stopped (used by up)")
    p.set_defaults(func=_reconcile)

    p = subparsers.add_parser(
        "sync-wait", help="wait until everything committed so far is searchable",
        description="Return once every change committed before the call has reached the index. "
                    "Exit code 0 when synced, 1 on timeout.",
    )
    p.add_argument("--timeout", type=_seconds, help="give up after this many seconds")
    p.add_argument("--json", action="store_true", help="print the final state as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_sync_wait)
