"""Run the local index server: open the data directory, then serve HTTP with uvicorn.

The port is only bound once every index is loaded, so "the port answers" means "ready".
SIGTERM / SIGINT stop it gracefully: in-flight requests finish, changed namespaces are
snapshotted (fast restart), the data directory is unlocked. ``kill -9`` loses nothing that was
acknowledged; the next start replays what the snapshots lack.
"""

from __future__ import annotations

import argparse
import errno
import faulthandler
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from refarch.errors import IndexServiceError, RefarchError
from refarch.index.server.hosts import AllowedHosts, check_bind
from refarch.index.server.tuning import Tuning
from refarch.logs import configure, event
from refarch.settings import Settings

log = logging.getLogger("refarch.index.server")


class _Terminated(Exception):
    """SIGTERM arrived; uvicorn has already shut down gracefully when this is raised."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Terminated


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`IndexServiceError` when ``host:port`` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise IndexServiceError(
                    f"port {port} on {host} is already in use (another index server, or "
                    f"another program); stop it, or choose another port with --port or "
                    f"REFARCH_INDEX_PORT"
                ) from None
            raise IndexServiceError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(
    data_dir: Path,
    host: str,
    port: int,
    api_key: str | None = None,
    tuning: Tuning | None = None,
    allowed_hosts: Sequence[str] = (),
) -> None:
    """Serve the indexes under ``data_dir`` on ``host:port`` until SIGTERM/SIGINT.

    Refuses (:class:`IndexServiceError`) an address other machines can reach unless an
    ``api_key`` is set; answers requests whose Host header is a loopback name, ``host``, or
    one of ``allowed_hosts``.
    """
    import uvicorn

    from refarch.index.server.app import create_app
    from refarch.index.server.registry import Registry

    check_bind(host, api_key)
    check_port_free(host, port)
    started = time.monotonic()
    registry = Registry(data_dir, tuning)
    try:
        app = create_app(registry, api_key, AllowedHosts(host, allowed_hosts))
        registry.start()
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=30,
        )
        event(log, "index_server_ready", url=f"http://{host}:{port}", data_dir=str(data_dir),
              indexes=len(registry.engines),
              vectors=sum(e.total() for e in registry.engines.values()),
              seconds=time.monotonic() - started)
        # uvicorn handles SIGTERM itself, then re-raises it once it has stopped; this handler
        # turns that into an exception so the indexes are snapshotted and closed below.
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            uvicorn.Server(config).run()
        except _Terminated:
            pass
    finally:
        registry.close()
        event(log, "index_server_stopped", data_dir=str(data_dir))


def _tuning_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine tuning (defaults measured by bench/bench_index.py)")
    for item in fields(Tuning):
        kind = float if item.type in ("float", float) else int
        group.add_argument(f"--{item.name.replace('_', '-')}", type=kind, default=None,
                           dest=item.name, metavar="N")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m refarch.index.server --data-dir DIR --port P``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m refarch.index.server",
        description="Local Pinecone-compatible vector index server.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="where the indexes live")
    parser.add_argument("--host", default=None, help="address to bind (REFARCH_INDEX_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (REFARCH_INDEX_PORT)")
    _tuning_arguments(parser)
    args = parser.parse_args(argv)
    # A crash in native code (the ANN graph) then leaves the Python stacks in the server's log.
    faulthandler.enable()
    try:
        settings = Settings.from_env()
        configure(settings.log_level)
        overrides = {
            item.name: getattr(args, item.name)
            for item in fields(Tuning)
            if getattr(args, item.name) is not None
        }
        serve(
            args.data_dir.resolve(),
            args.host or settings.index_host,
            args.port or settings.index_port,
            settings.index_api_key,
            Tuning(**overrides),
            settings.index_allowed_hosts,
        )
    except RefarchError as exc:
        print(f"refarch index server: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
