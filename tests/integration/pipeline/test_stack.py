"""`refarch up --detach`, `status --json`, `search`, `sync-wait`, supervision, `down`, and a second
`up` that backfills a new index: the local stack as a user drives it, with real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import psycopg
import pytest

from tests.support.dirs import scratch_dir
from tests.support.stack import log_tails, run_refarch, stack_env, stack_status
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

PRODUCTS = 40
#: Seconds a CLI command may take (`up` loads the model and embeds the catalog).
CLI_TIMEOUT = 600
#: Seconds to wait for the supervisor or reconcile to act, checking every half second.
ACT_TIMEOUT, POLL = 60, 0.5


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    """The environment of a stack of its own (not started); `refarch down` after the test."""
    home = scratch_dir("refarch-stack-")
    env = stack_env(home, REFARCH_INDEXER_WORKERS="1", REFARCH_RECONCILE_INTERVAL="3")
    try:
        yield env
    finally:
        refarch(env, "down", timeout=180)
        shutil.rmtree(home, ignore_errors=True)


def refarch(env: dict[str, str], *args: str, timeout: float = CLI_TIMEOUT) -> CompletedProcess[str]:
    return run_refarch(env, *args, timeout=timeout)


def test_the_local_stack_end_to_end(env: dict[str, str]) -> None:
    up = refarch(env, "up", "--detach", "--no-app", "--no-progress", "--generate", str(PRODUCTS))
    assert up.returncode == 0, up.stdout + up.stderr + log_tails(Path(env["REFARCH_HOME"]))

    report = stack_status(env)
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
    assert wait_until(lambda: _process(env, "relay")["restarts"] >= 1, ACT_TIMEOUT, interval=POLL)
    assert refarch(env, "sync-wait", "--timeout", "120", "--no-progress").returncode == 0
    report = stack_status(env)
    assert report["index_vectors"] == PRODUCTS + 1
    assert wait_until(lambda: (stack_status(env)["last_reconcile"] or {}).get("products") == PRODUCTS + 1,
                      ACT_TIMEOUT, interval=POLL)
    assert stack_status(env)["last_reconcile"]["drift"] == 0
    checked = refarch(env, "reconcile", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["drift"] == 0
    refilled = refarch(env, "backfill", "--no-progress")
    assert refilled.returncode == 0 and f"enqueued {PRODUCTS + 1} products" in refilled.stdout
    assert refarch(env, "sync-wait", "--timeout", "120", "--no-progress").returncode == 0

    pids = [p["pid"] for p in stack_status(env)["processes"]]
    down = refarch(env, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    after = stack_status(env)
    assert not after["stack"]["running"] and after["postgres"] == "stopped"
    assert not any(_alive(pid) for pid in pids)

    # A second `up` keeps the data; with the index wiped it backfills (a new index).
    shutil.rmtree(Path(env["REFARCH_HOME"]) / "index")
    up = refarch(env, "up", "--detach", "--no-app", "--no-progress")
    assert up.returncode == 0, up.stdout + up.stderr + log_tails(Path(env["REFARCH_HOME"]))
    report = stack_status(env)
    assert report["products"] == PRODUCTS + 1 and report["index_vectors"] == PRODUCTS + 1
    assert "backfill_enqueued" in (Path(env["REFARCH_HOME"]) / "logs" / "up.log").read_text()


def _process(env: dict[str, str], name: str) -> dict:
    """The entry of process ``name`` in `refarch status --json`."""
    return next(p for p in stack_status(env)["processes"] if p["name"] == name)


def _alive(pid: int | None) -> bool:
    """Whether any process has this pid, even a zombie (stricter than "running")."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

