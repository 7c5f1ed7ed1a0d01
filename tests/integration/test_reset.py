"""``refarch reset`` on a real local Postgres: it asks (and without a terminal refuses without
--yes, deleting nothing), then stops the server and deletes the cluster, the index data and
the logs, keeps the model export and the deploy state, and the next start is a fresh one."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from refarch.cli import main
from refarch.db.server import LocalPostgres
from refarch.settings import Settings
from tests.support.dirs import scratch_dir
from tests.support.ports import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = scratch_dir("refarch-test-reset-")
    for name in ("DATABASE_URL", "REFARCH_PG_TCP", "REFARCH_PG_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFARCH_HOME", str(path))
    monkeypatch.setenv("REFARCH_PG_PORT", str(free_port()))
    yield path
    logging.getLogger("refarch").handlers.clear()
    LocalPostgres.from_settings(Settings.from_env()).stop()
    shutil.rmtree(path, ignore_errors=True)


def _count(settings: Settings) -> int:
    server = LocalPostgres.from_settings(settings)
    with psycopg.connect(server.url()) as conn:
        row = conn.execute("SELECT count(*) FROM products").fetchone()
    assert row is not None
    return int(row[0])


def test_reset_asks_then_deletes_the_state_and_keeps_models_and_deploy(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "start"]) == 0
    assert main(["db", "migrate"]) == 0
    assert main(["load", "--generate", "7", "--no-progress"]) == 0
    settings = Settings.from_env()
    assert _count(settings) == 7
    for name, content in (("index/ns/data.bin", "x"), ("logs/indexer.log", "y"),
                          ("models/export/meta.json", "{}"), ("deploy/.pulumi/stack.json", "{}")):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(content)
    capsys.readouterr()

    # pytest's stdin is not a terminal: no one to ask, so nothing happens without --yes.
    assert main(["reset"]) == 2
    out, err = capsys.readouterr()
    assert "refarch reset deletes:" in out and str(home / "index") in out
    assert "models" in out and "deploy" in out and "pass --yes" in err
    assert (home / "index/ns/data.bin").exists() and LocalPostgres.from_settings(settings).status().running
    assert _count(settings) == 7

    assert main(["reset", "--yes"]) == 0
    server = LocalPostgres.from_settings(settings)
    assert not server.status().running
    assert not server.data_dir.exists() and not (home / "index").exists()
    assert not (home / "logs").exists()
    assert (home / "models/export/meta.json").read_text() == "{}"
    assert (home / "deploy/.pulumi/stack.json").read_text() == "{}"

    capsys.readouterr()
    assert main(["reset", "--yes"]) == 0
    assert "nothing to delete" in capsys.readouterr().out

    assert main(["db", "start"]) == 0 and main(["db", "migrate"]) == 0
    assert _count(settings) == 0  # a fresh cluster
