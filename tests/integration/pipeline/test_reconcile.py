"""Invariant 6: reconcile finds missing, stale and orphaned vectors, and --repair fixes them."""

from __future__ import annotations

import psycopg

from refarch.embeddings import product_text
from refarch.pipeline.reconcile import last_report, reconcile

from .harness import Pipeline


def _reconcile(pipeline: Pipeline, repair: bool = False):
    with psycopg.connect(pipeline.owner_url, autocommit=True) as conn:
        return reconcile(conn, pipeline.index, text_of=product_text,
                         repair_queue=pipeline.owner_queue if repair else None)


def test_reconcile_reports_each_kind_of_drift_and_repair_fixes_it(pipeline: Pipeline) -> None:
    ids = [pipeline.insert(f"R-{i}", description=f"thing number {i}") for i in range(6)]
    pipeline.sync()
    assert _reconcile(pipeline).drift == 0

    # missing: a vector lost; stale: an older vector; stale (text): same version, other text;
    # ahead: a vector from the future (Postgres restored from a backup); orphaned: no such row.
    pipeline.index.delete([str(ids[0])])
    values, metadata = pipeline.index.fetch([str(ids[1])])[str(ids[1])]
    pipeline.index.upsert([(str(ids[1]), values, {**metadata, "version": metadata["version"] - 1})])
    values, metadata = pipeline.index.fetch([str(ids[2])])[str(ids[2])]
    pipeline.index.upsert([(str(ids[2]), values, {**metadata, "content_hash": "not-the-text"})])
    values, metadata = pipeline.index.fetch([str(ids[3])])[str(ids[3])]
    pipeline.index.upsert([(str(ids[3]), values, {**metadata, "version": metadata["version"] + 1000})])
    pipeline.index.upsert([("999999", values, {**metadata, "id": 999999})])

    report = _reconcile(pipeline)
    assert report.missing == [ids[0]]
    assert report.stale == [ids[1], ids[2], ids[3]]
    assert report.orphaned == [999999]
    assert report.drift == 5
    with psycopg.connect(pipeline.owner_url, autocommit=True) as conn:
        recorded = last_report(conn)
    assert recorded is not None and recorded["drift"] == 5

    # Without repair the normal pipeline would never notice: nothing is in the outbox.
    assert pipeline.index_all() == []
    repaired = _reconcile(pipeline, repair=True)
    assert repaired.repaired == 5
    pipeline.index_all()
    assert _reconcile(pipeline).drift == 0
    assert pipeline.index_state() == pipeline.postgres_state()


def test_repair_leaves_dead_lettered_products_alone(pipeline: Pipeline) -> None:
    """On the real stack, with an indexer that dead-letters on the first failure (no waiting;
    the same test with retries runs on a fake clock in tests/unit/pipeline/test_reconcile.py)."""
    good = pipeline.insert("GOOD")
    poison = pipeline.insert("POISON", name=" ", description=" ", category=None)
    pipeline.relay()
    impatient = pipeline.new_worker(max_receives=1)
    impatient.step()
    impatient.close()
    assert [d.group_id for d in pipeline.owner_queue.dead_letters()] == [f"product-{poison}"]
    report = _reconcile(pipeline, repair=True)
    assert report.missing == [poison] and report.dead_lettered == [poison]
    assert report.repaired == 0  # re-enqueueing it would only pile up dead letters
    assert set(pipeline.index_state()) == {good}
