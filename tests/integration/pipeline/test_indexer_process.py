"""`refarch indexer` as a real process: graceful SIGTERM, and a pool of worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from refarch.bootstrap import make_index, pinecone_client, with_user
from refarch.queue.local import PostgresQueue
from tests.support.paths import ROOT
from tests.support.waiting import wait_until

from .harness import Pipeline

pytestmark = pytest.mark.slow


def _env(pipeline_db: str, index_settings, name: str, home: Path) -> dict[str, str]:
    return {
        **os.environ, "REFARCH_HOME": str(home), "DATABASE_URL": pipeline_db,
        "REFARCH_INDEXER_DATABASE_URL": with_user(pipeline_db, "refarch_indexer"),
        "REFARCH_INDEX": "local", "REFARCH_INDEX_PORT": str(index_settings.index_port),
        "REFARCH_INDEX_NAME": name, "REFARCH_INDEXER_BATCH_SIZE": "40",
        "REFARCH_QUEUE_VISIBILITY_TIMEOUT": "120",
    }


@pytest.fixture
def named_index(index_settings):
    name = f"p-{uuid.uuid4().hex[:12]}"
    settings = index_settings.with_(index_name=name)
    index = make_index(settings)
    yield name, index
    pinecone_client(settings).delete_index(name)


def test_sigterm_finishes_the_batch_in_hand(pipeline_db, relay_url, indexer_url, index_settings,
                                            named_index, embedder, tmp_path: Path) -> None:
    name, index = named_index
    pipeline = Pipeline(pipeline_db, relay_url, indexer_url, index, embedder)
    try:
        pipeline.sql("INSERT INTO products (sku, name, description, price) "
                     "SELECT 'S' || g, 'Thing ' || g, 'A useful thing number ' || g, g "
                     "FROM generate_series(1, 400) g")
        pipeline.relay()
        observer = PostgresQueue(pipeline_db)
        proc = subprocess.Popen([sys.executable, "-m", "refarch.cli", "indexer", "--workers", "1"],
                                env=_env(pipeline_db, index_settings, name, tmp_path), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert wait_until(lambda: observer.stats().in_flight > 0, 180), "the indexer never took a batch"
            proc.send_signal(signal.SIGTERM)  # mid-batch
            output, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, output
        assert "event=indexer_stopped" in output
        stats = observer.stats()
        assert stats.in_flight == 0  # the batch in hand was finished and acknowledged, not dropped
        indexed = index.count()
        assert indexed > 0 and indexed + stats.visible == 400  # everything else still waits
        observer.close()
    finally:
        pipeline.close()


def test_a_pool_of_workers_shares_the_queue_and_stops_together(pipeline_db, relay_url, indexer_url,
                                                               index_settings, named_index, embedder,
                                                               tmp_path: Path) -> None:
    name, index = named_index
    pipeline = Pipeline(pipeline_db, relay_url, indexer_url, index, embedder)
    try:
        pipeline.sql("INSERT INTO products (sku, name, description, price) "
                     "SELECT 'P' || g, 'Gadget ' || g, 'A gadget for task ' || g, g "
                     "FROM generate_series(1, 120) g")
        pipeline.relay()
        proc = subprocess.Popen([sys.executable, "-m", "refarch.cli", "indexer", "--workers", "2"],
                                env=_env(pipeline_db, index_settings, name, tmp_path), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert wait_until(lambda: index.count() == 120, 300), "the pool did not index everything"
            log_dir = tmp_path / "logs"

            def started() -> set[str]:
                return {p.name for p in log_dir.glob("indexer-pool-*.log")
                        if "event=indexer_started" in p.read_text()}

            # One worker may drain 120 rows before the other has loaded the model; both must start.
            wait_until(lambda: len(started()) >= 2, 120)
            assert started() == {"indexer-pool-1.log", "indexer-pool-2.log"}
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, output
        assert pipeline.index_state() == pipeline.postgres_state()
        for text in (tmp_path / "logs").glob("indexer-pool-*.log"):
            assert "event=indexer_stopped" in text.read_text()
    finally:
        pipeline.close()
