"""Start and stop the local index server as a subprocess (tests, notebooks, the local stack).

:func:`start_index_server` launches ``python -m refarch.index.server``, waits until it answers
(it binds its port only once its data is loaded) and returns an :class:`IndexServerHandle`;
use it as a context manager or call :meth:`IndexServerHandle.stop`. :func:`local_index_session`
is what one-shot CLI commands use: the server already running on the configured port, or one
started for the duration of the command.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import httpx

from refarch.errors import IndexServiceError
from refarch.index.server.hosts import check_bind
from refarch.index.server.main import check_port_free
from refarch.logs import event
from refarch.settings import Settings

log = logging.getLogger("refarch.index")


def default_data_dir(settings: Settings) -> Path:
    """Where the local index keeps its data: ``REFARCH_HOME/index``."""
    return settings.home / "index"


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for tests and throwaway servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a refarch index server answers its health check at ``url``."""
    try:
        response = httpx.get(f"{url}/_refarch/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("status") == "ok"


class IndexServerHandle:
    """A running local index server: its ``url``, ``pid`` and how to stop it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, data_dir: Path,
                 log_path: Path) -> None:
        self.process = process
        self.url = url
        self.data_dir = data_dir
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """Process id of the server."""
        return self.process.pid

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process.poll() is None

    def stop(self, timeout: float = 120.0) -> int:
        """Stop gracefully (SIGTERM: finish requests, snapshot); SIGKILL after ``timeout`` s."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def kill(self) -> None:
        """``kill -9`` the server (fault tests): no snapshot, no cleanup."""
        if self.running():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log file."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> IndexServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_index_server(
    settings: Settings,
    data_dir: Path | None = None,
    port: int | None = None,
    host: str | None = None,
    *,
    ready_timeout: float = 300.0,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> IndexServerHandle:
    """Start a local index server and wait until it answers.

    ``data_dir`` defaults to ``REFARCH_HOME/index``, ``port`` and ``host`` to the settings.
    ``extra_args`` are passed through (engine tuning flags, e.g. ``["--ef-search", "64"]``),
    ``extra_env`` is added to the server's environment (fault tests arm
    :mod:`refarch.index.server.faults` with it).
    Raises :class:`~refarch.errors.IndexServiceError` when ``host`` is not loopback and no
    API key is configured, the port is taken, the data directory is in use, or the server
    exits or does not answer within ``ready_timeout``.
    """
    host = host or settings.index_host
    port = port or settings.index_port
    data_dir = (data_dir or default_data_dir(settings)).resolve()
    check_bind(host, settings.index_api_key)
    data_dir.mkdir(parents=True, exist_ok=True)
    check_port_free(host, port)
    log_path = data_dir / "server.log"
    env = dict(os.environ)
    if settings.index_api_key:
        env["REFARCH_INDEX_API_KEY"] = settings.index_api_key
    if settings.index_allowed_hosts:
        env["REFARCH_INDEX_ALLOWED_HOSTS"] = ",".join(settings.index_allowed_hosts)
    env.setdefault("REFARCH_LOG_LEVEL", settings.log_level)
    env.update(extra_env or {})
    command = [
        sys.executable, "-m", "refarch.index.server",
        "--data-dir", str(data_dir), "--host", host, "--port", str(port), *extra_args,
    ]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL)
    url = f"http://{host}:{port}"
    handle = IndexServerHandle(process, url, data_dir, log_path)
    deadline = time.monotonic() + ready_timeout
    while True:
        if not handle.running():
            raise IndexServiceError(
                f"the index server exited with code {process.returncode} before it was "
                f"ready:\n{handle.log_tail()}"
            )
        if server_answers(url, timeout=0.5):
            break
        if time.monotonic() > deadline:
            handle.kill()
            raise IndexServiceError(
                f"the index server did not answer on {url} within {ready_timeout:.0f} s:\n"
                f"{handle.log_tail()}"
            )
        time.sleep(0.05)
    event(log, "index_server_started", url=url, pid=process.pid, data_dir=str(data_dir))
    return handle


@contextmanager
def local_index_session(settings: Settings) -> Iterator[str]:
    """The URL of the local index server, starting one for the duration if none is running."""
    url = f"http://{settings.index_host}:{settings.index_port}"
    if server_answers(url):
        yield url
        return
    with start_index_server(settings) as handle:
        yield handle.url
