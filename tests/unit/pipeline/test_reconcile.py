"""Reconcile on the fakes: it finds missing, stale and orphaned vectors, enqueues repairs that
the indexer then applies, and leaves dead-lettered products alone."""

from __future__ import annotations

from refarch.embeddings import product_text
from refarch.pipeline.changes import ProductChange
from refarch.pipeline.reconcile import DriftReport, dead_lettered_products, last_report, reconcile
from refarch.queue.port import OutgoingMessage
from tests.unit.pipeline.fake_pipeline import FakePipeline


def _reconcile(pipeline: FakePipeline, repair: bool = False) -> DriftReport:
    with pipeline.db.connect() as conn:
        return reconcile(conn, pipeline.index, text_of=product_text,
                         repair_queue=pipeline.queue if repair else None, clock=pipeline.clock)


def test_reconcile_reports_each_kind_of_drift_and_repair_fixes_it(pipeline: FakePipeline) -> None:
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
    with pipeline.db.connect() as conn:
        recorded = last_report(conn)
    assert recorded is not None and recorded["drift"] == 5

    # Without repair the normal pipeline would never notice: nothing is in the outbox.
    assert pipeline.index_all() == []
    repaired = _reconcile(pipeline, repair=True)
    assert repaired.repaired == 5
    pipeline.index_all()
    assert _reconcile(pipeline).drift == 0
    assert pipeline.index_state() == pipeline.postgres_state()


def test_repairs_and_the_recorded_run_carry_the_clock_s_time(pipeline: FakePipeline) -> None:
    pid = pipeline.insert("MISSING")
    pipeline.clock.advance(42)
    report = _reconcile(pipeline, repair=True)
    assert report.missing == [pid] and report.repaired == 1 and report.seconds == 0.0
    (message,) = pipeline.queue.receive(10)
    change = ProductChange.from_json(message.body)
    assert (change.source, change.op, change.changed_at) == ("repair", "upsert", pipeline.clock.now())
    run = pipeline.db.reconcile_runs[-1]
    assert run["started_at"] == pipeline.clock.now()
    assert (run["missing"], run["repaired"]) == (1, 1)


def test_repair_leaves_dead_lettered_products_alone(pipeline: FakePipeline) -> None:
    """Moved from tests/integration/pipeline/test_reconcile.py (it slept through the backoffs)."""
    good = pipeline.insert("GOOD")
    poison = pipeline.insert("POISON", name=" ", description=" ", category=None)
    pipeline.relay()
    for _ in range(10):
        pipeline.worker.step()
        if pipeline.queue.stats().dead:
            break
        pipeline.clock.sleep(1.1)
    assert [d.group_id for d in pipeline.queue.dead_letters()] == [f"product-{poison}"]
    report = _reconcile(pipeline, repair=True)
    assert report.missing == [poison] and report.dead_lettered == [poison]
    assert report.repaired == 0  # re-enqueueing it would only pile up dead letters
    assert set(pipeline.index_state()) == {good}


def test_dead_lettered_products_are_read_from_the_product_groups_only(pipeline: FakePipeline) -> None:
    pipeline.queue.send_batch([
        OutgoingMessage("{}", "product-12", "a"), OutgoingMessage("{}", "junk", "b"),
        OutgoingMessage("{}", "product-x", "c"), OutgoingMessage("{}", "product-7", "d"),
    ])
    for message in pipeline.queue.receive(10):
        pipeline.queue.dead_letter(message, "failed")
    assert dead_lettered_products(pipeline.queue) == {7, 12}
