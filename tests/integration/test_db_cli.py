"""``refarch db ...`` and ``refarch load ...`` through :func:`refarch.cli.main`, on real servers."""

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

CATALOG = """name,sku,description,price,last_updated
Steel Travel Mug,MUG-1,"Keeps coffee hot for 12 hours, leak-proof lid",$24.99,2023-09-20 22:51:32
Lunch Bag,BAG-1,Insulated bag for lunch,not-a-price,2023-09-20 22:51:32
Thermos,MUG-2,"Vacuum flask; ""really"" hot","$1,299.00",2023-09-21 10:00:00
Copy of mug,MUG-1,Same SKU again,$5.00,2023-09-22 10:00:00
Tea Tumbler,MUG-3,Tumbler with a tea infuser,19.5,
"""


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh REFARCH_HOME on a free port, and no DATABASE_URL; the server stopped after."""
    path = scratch_dir("refarch-test-cli-")
    for name in ("DATABASE_URL", "PG_BIN", "REFARCH_PG_TCP", "REFARCH_PG_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFARCH_HOME", str(path))
    monkeypatch.setenv("REFARCH_PG_PORT", str(free_port()))
    yield path
    # main() pointed refarch's log handler at capsys's stream, which is closed by now.
    logging.getLogger("refarch").handlers.clear()
    try:
        LocalPostgres.from_settings(Settings.from_env()).stop()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_db_lifecycle_and_load(home: Path, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "db", "status")
    assert code == 3 and "stopped" in out and "not initialised" in out

    code, out, _ = _run(capsys, "db", "start")
    assert code == 0 and "is now running" in out
    code, out, _ = _run(capsys, "db", "start")
    assert code == 0 and "was already running" in out

    code, out, _ = _run(capsys, "db", "status")
    assert code == 0 and "state:    running" in out
    assert f"data dir: {home / 'postgres'}" in out and "pid:" in out
    code, url, _ = _run(capsys, "db", "url")
    url = url.strip()
    assert code == 0 and url.startswith("postgresql:///refarch?host=") and url in out

    code, out, _ = _run(capsys, "db", "migrate")
    assert code == 0 and "applied 0001_products.sql" in out
    code, out, _ = _run(capsys, "db", "migrate")
    assert code == 0 and "already up to date" in out

    code, out, _ = _run(capsys, "load", "--generate", "300", "--seed", "3", "--no-progress")
    assert code == 0 and "300 inserted" in out
    code, out, _ = _run(capsys, "load", "--generate", "300", "--seed", "3", "--no-progress")
    assert code == 0 and "0 inserted, 0 updated, 300 unchanged" in out

    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    code, out, err = _run(capsys, "load", "--csv", str(catalog), "--no-progress")
    assert code == 1
    assert "rejected line 3:" in err and "rejected line 5:" in err
    assert "2 rows were rejected" in err
    assert "3 inserted" in out
    with psycopg.connect(url) as conn:
        loaded = dict(conn.execute(
            "SELECT sku, price::text FROM products WHERE sku LIKE 'MUG-%'").fetchall())
    assert loaded == {"MUG-1": "24.99", "MUG-2": "1299.00", "MUG-3": "19.50"}

    code, _, err = _run(capsys, "load", "--csv", str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv" in err

    code, out, _ = _run(capsys, "db", "stop")
    assert code == 0 and "PostgreSQL stopped" in out
    code, out, _ = _run(capsys, "db", "stop")
    assert code == 0 and "was not running" in out
    code, out, err = _run(capsys, "db", "url")
    assert code == 0 and out.strip() == url and "not running" in err
    code, out, _ = _run(capsys, "db", "status")
    assert code == 3 and "stopped" in out


def test_with_database_url_the_cli_starts_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("REFARCH_HOME", str(home))
    monkeypatch.setenv("DATABASE_URL", db_url)

    code, out, _ = _run(capsys, "db", "start")
    assert code == 0 and "DATABASE_URL is set" in out and "no local server" in out
    code, out, _ = _run(capsys, "db", "status")
    assert code == 0 and "reachable" in out and "not managed by refarch" in out
    code, out, _ = _run(capsys, "db", "url")
    assert out.strip() == db_url
    code, out, _ = _run(capsys, "load", "--generate", "50", "--no-progress")
    assert code == 0 and "50 inserted" in out
    code, out, _ = _run(capsys, "db", "stop")
    assert code == 0 and "nothing to stop" in out
    assert not home.exists()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone() == (50,)


def test_an_unreachable_database_url_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("REFARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABASE_URL",
                       f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db?connect_timeout=2")
    code, out, _ = _run(capsys, "db", "status")
    assert code == 3 and "unreachable" in out and "hunter2" not in out
    code, _, err = _run(capsys, "load", "--generate", "5", "--no-progress")
    assert code == 2 and "cannot connect" in err and "hunter2" not in err


def test_load_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["load", "--generate", "0"])
    assert exited.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["load"])
    assert "one of the arguments --csv --generate is required" in capsys.readouterr().err
