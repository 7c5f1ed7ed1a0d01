"""`refarch up --detach`, `status --json`, `search`, `sync-wait`, supervision, `down`, and a second
`up` that backfills a new index: the local stack as a user drives it, with real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from refarch.index.process import find_free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PRODUCTS = 40


@pytest.fixture
def stack_env() -> Iterator[dict[str, str]]:
    home = Path(tempfile.mkdtemp(prefix="refarch-stack-"))
    home.chmod(0o755)
    env = {
        **os.environ,
        "REFARCH_HOME": str(home), "REFARCH_PG_PORT": str(find_free_port()),
        "REFARCH_INDEX_PORT": str(find_free_port()), "REFARCH_INDEXER_WORKERS": "1",
        "REFARCH_RECONCILE_INTERVAL": "3",
    }
    for name in ("DATABASE_URL", "REFARCH_INDEX", "REFARCH_QUEUE", "REFARCH_APP_DATABASE_URL",
                 "REFARCH_RELAY_DATABASE_URL", "REFARCH_INDEXER_DATABASE_URL"):
        env.pop(name, None)
    try:
        yield env
    finally:
        refarch(env, "down", timeout=180)
        shutil.rmtree(home, ignore_errors=True)


def refarch(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refarch.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def status(env: dict[str, str]) -> dict:
    result = refarch(env, "status", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def test_the_local_stack_end_to_end(stack_env: dict[str, str]) -> None:
    env = stack_env
    up = refarch(env, "up", "--detach", "--no-app", "--no-progress", "--generate", str(PRODUCTS))
    assert up.returncode == 0, up.stdout + up.stderr + _logs(env)

    report = status(env)
    assert report["stack"]["running"] and report["stack"]["phase"] in ("ready", "running")
    assert report["products"] == PRODUCTS and report["index_vectors"] == PRODUCTS
    assert report["outbox_pending"] == 0 and report["dead_letters"] == 0
    names = {p["name"]: p for p in report["processes"]}
    assert {"index-server", "relay", "indexer-1", "reconcile"} <= set(names)
    assert all(p["healthy"] for p in names.values())
    # The two connection keys work with the tools users have.
    with psycopg.connect(report["database_url"]) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == PRODUCTS
    from pinecone import Pinecone

    sdk_index = Pinecone(api_key="any", host=report["index_host"]).Index(host=report["index_host"])
    assert sdk_index.describe_index_stats().total_vector_count == PRODUCTS

    found = refarch(env, "search", "keep my coffee hot on the commute", "--json", "--top-k", "3")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 3 and {"id", "sku", "name", "category", "price", "score"} <= set(hits[0])
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)

    # An edit is searchable once sync-wait returns.
    with psycopg.connect(report["database_url"], autocommit=True) as conn:
        pid = conn.execute("SELECT id FROM products ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute("UPDATE products SET name = 'Zanzibar teleportation umbrella', "
                     "description = 'An umbrella that teleports you to Zanzibar.' WHERE id = %s", (pid,))
    waited = refarch(env, "sync-wait", "--timeout", "120", "--no-progress")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    found = refarch(env, "search", "umbrella that teleports to Zanzibar", "--json", "--top-k", "1")
    assert json.loads(found.stdout)[0]["id"] == pid

    # kill -9 the relay: the supervisor restarts it and nothing committed meanwhile is lost.
    os.kill(names["relay"]["pid"], signal.SIGKILL)
    with psycopg.connect(report["database_url"], autocommit=True) as conn:
        conn.execute("INSERT INTO products (sku, name, description, price, category) VALUES "
                     "('NEW-1', 'Solar powered kettle', 'Boils water with sunlight.', 30, 'Kitchen')")
    assert _wait(lambda: next(p for p in status(env)["processes"] if p["name"] == "relay")["restarts"] >= 1, 60)
    assert refarch(env, "sync-wait", "--timeout", "120", "--no-progress").returncode == 0
    report = status(env)
    assert report["index_vectors"] == PRODUCTS + 1
    assert _wait(lambda: (status(env)["last_reconcile"] or {}).get("products") == PRODUCTS + 1, 60)
    assert status(env)["last_reconcile"]["drift"] == 0
    checked = refarch(env, "reconcile", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["drift"] == 0
    refilled = refarch(env, "backfill", "--no-progress")
    assert refilled.returncode == 0 and f"enqueued {PRODUCTS + 1} products" in refilled.stdout
    assert refarch(env, "sync-wait", "--timeout", "120", "--no-progress").returncode == 0

    pids = [p["pid"] for p in status(env)["processes"]]
    down = refarch(env, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    after = status(env)
    assert not after["stack"]["running"] and after["postgres"] == "stopped"
    assert not any(_alive(pid) for pid in pids)

    # A second `up` keeps the data; with the index wiped it backfills (a new index).
    shutil.rmtree(Path(env["REFARCH_HOME"]) / "index")
    up = refarch(env, "up", "--detach", "--no-app", "--no-progress")
    assert up.returncode == 0, up.stdout + up.stderr + _logs(env)
    report = status(env)
    assert report["products"] == PRODUCTS + 1 and report["index_vectors"] == PRODUCTS + 1
    assert "backfill_enqueued" in (Path(env["REFARCH_HOME"]) / "logs" / "up.log").read_text()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _logs(env: dict[str, str]) -> str:
    logs = Path(env["REFARCH_HOME"]) / "logs"
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted(logs.glob("*.log")))
