"""What each notebook must have recorded (via ``refarch.tutorial.results.record``).

One entry per notebook in ``notebooks/``: the parameters the test runs it with (small and
offline) and a check on its recorded results. A notebook without an entry fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from refarch.webapp.text import literal


@dataclass(frozen=True)
class Expectation:
    """How to run one notebook in the tests and what its results must show."""

    check: Callable[[dict[str, Any]], None]
    parameters: dict[str, Any] = field(default_factory=dict)


_01_PARAMETERS: dict[str, Any] = {
    "N_PRODUCTS": 300,
    "QUERIES": [
        "keep my coffee hot on the commute",
        "waterproof boots for hiking in the mountains",
        "stop my bicycle from getting stolen",
    ],
}


def _check_01_prototype_search(results: dict[str, Any]) -> None:
    assert results["n_products"] == _01_PARAMETERS["N_PRODUCTS"]
    assert results["n_categories"] >= 15
    assert results["embedding_dim"] == 384
    assert results["max_norm_error"] < 1e-4
    assert results["embed_texts_per_second"] > 0
    # The shipped sample in the reference architecture's CSV format loads as is.
    assert results["sample_products_loaded"] == 26 and results["sample_row_errors"] == 0
    assert results["sample_coffee_top_sku"] == "SKU-tRvM-101"  # the hand-written travel mug
    assert set(results["top_category"]) == set(_01_PARAMETERS["QUERIES"])
    assert results["top_category"] == {
        "keep my coffee hot on the commute": "Drinkware",
        "waterproof boots for hiking in the mountains": "Footwear",
        "stop my bicycle from getting stolen": "Cycling",
    }
    assert results["top_types"]["waterproof boots for hiking in the mountains"][0] == "hiking boots"
    assert results["top_types"]["stop my bicycle from getting stolen"][0] == "bike lock"
    # Travel mugs, not lunch bags.
    assert results["coffee_hit"] is True
    assert results["coffee_top_types"][0] == "travel mug"
    assert "lunch bag" not in results["coffee_top_types"]
    assert results["coffee_travel_mug_precision"] >= 0.6


_02_PARAMETERS: dict[str, Any] = {"N_PRODUCTS": 300, "BATCH_SIZE": 50}


def _check_02_vector_index(results: dict[str, Any]) -> None:
    n = _02_PARAMETERS["N_PRODUCTS"]
    assert results["backend"] == "local"  # the default: a local server, no account
    assert results["n_products"] == n
    assert results["dimension"] == 384 and results["metric"] == "cosine"
    assert results["upserted"] == n and results["total_after_upsert"] == n
    assert results["upsert_vectors_per_second"] > 0
    assert results["top_category"] == "Drinkware"  # travel mugs for the coffee query
    assert 0.3 < results["top_score"] <= 1.0
    assert results["category_filter_ok"] is True
    assert results["price_filter_ok"] is True
    assert results["update_ok"] is True
    assert results["deleted"] >= 2 and results["deleted_absent"] is True
    assert results["total_after_delete"] == n - results["deleted"]
    assert results["recall_at_k"] >= 0.95


def _check_06_deploy_with_pulumi(results: dict[str, Any]) -> None:
    # The offline plan of the default stack: every component, every rule holding.
    assert results["components"] == sorted(
        ["Network", "SecurityGroups", "Database", "ChangeQueue", "VectorIndex", "ServiceImage",
         "Services", "Edge", "Autoscaling", "Observability", "RepairSchedule"])
    assert results["cloud_resources"] >= 80
    assert results["cloud_resources"] == sum(results["resources_per_type"].values())
    assert results["security_groups"] == 6 and results["ecs_services"] == 3
    assert results["public_ingress_ports"] == [80, 443]  # 80 only redirects to HTTPS
    assert results["index_dimension"] == results["model_dimension"] == 384
    assert results["rules_checked"] >= 24 and results["rule_violations"] == 0
    assert results["diagram_edges"] >= 15
    assert results["deployed"] is False and results["destroyed"] is False
    assert results["smoke_hits"] == 0


_03_PARAMETERS: dict[str, Any] = {"N_PRODUCTS": 200}


def _check_03_postgres_source_of_truth(results: dict[str, Any]) -> None:
    assert results["migrations"][:3] == ["0001_products", "0002_outbox", "0003_queue"]
    assert results["n_products"] == results["outbox_after_load"] == _03_PARAMETERS["N_PRODUCTS"]
    steps = results["trigger_steps"]  # [version, search_version, outbox rows of the product]
    assert steps["after the load"][2] == 1
    assert steps["UPDATE name"][0] == steps["UPDATE name"][1] > steps["after the load"][0]
    assert steps["UPDATE name"][2] == 2
    only_ts = steps["UPDATE last_updated only"]
    assert only_ts[0] > steps["UPDATE name"][0] and only_ts[1] == steps["UPDATE name"][1]
    assert only_ts[2] == 2  # no outbox row for a column the index does not hold
    assert steps["UPDATE that changes nothing"] == only_ts
    assert steps["rolled-back UPDATE"] == only_ts
    assert steps["UPDATE with a 50 KB description"][2] == 3
    assert steps["DELETE"][2] == 4
    assert results["outbox_ops"] == ["upsert", "upsert", "upsert", "delete"]
    assert results["notify_payloads"] == [""]
    privileges = results["privileges"]
    assert privileges["refarch_app"] == {"products SELECT": True, "products UPDATE": True,
                                         "outbox SELECT": False, "outbox DELETE": False}
    assert privileges["refarch_relay"]["outbox DELETE"] and not privileges["refarch_relay"]["products UPDATE"]
    assert not any(v for k, v in privileges["refarch_indexer"].items() if k != "products SELECT")
    assert results["top_category"] == "Drinkware" and results["top_score"] > 0.3
    assert results["cheap_max_price"] is not None and results["cheap_max_price"] <= 20
    assert "unknown filter field 'colour'" in results["unknown_filter_error"]
    assert results["renamed_shown"] is True
    assert results["deleted_dropped"] == 1 and results["deleted_absent"] is True
    assert results["drift"] == 0 and results["vectors"] == _03_PARAMETERS["N_PRODUCTS"] - 2


_05_PARAMETERS: dict[str, Any] = {"N_PRODUCTS": 200}


def _check_05_streamlit_app(results: dict[str, Any]) -> None:
    assert results["n_products"] == _05_PARAMETERS["N_PRODUCTS"]
    assert "Type what you are looking for" in results["empty_state"]
    assert results["result_columns"] == [
        "Rank", "Score", "Name", "SKU", "Category", "Price", "Description", "Index"]
    assert results["n_results"] == 10 and results["ranks"] == list(range(1, 11))
    assert results["scores_descending"] is True
    # The page adds widgets, not logic: the same ranking as refarch.search.
    assert results["same_as_search"] is True
    # A shared URL restored the category filter and the page size.
    assert results["shared_categories_shown"] == [results["shared_category"]]
    assert results["shared_page_size"] == 5
    # The edit was "indexing…" until the pipeline ran, then searchable by its new text only.
    assert results["state_before_sync"] == "indexing…"
    assert results["state_after_sync"].startswith("searchable")
    assert results["new_text_top_sku"] == results["edited_sku"]
    assert results["new_text_top_description"] is True
    # The page escapes the message as Markdown (refarch.webapp.text.literal); AppTest gives the source.
    assert results["price_error"] == literal("Price must not be negative (got -4)")
    assert results["nothing_written"] is True
    metrics = results["status_metrics"]
    assert metrics["Products"] == metrics["Index vectors"] == "200"
    assert metrics["Outbox pending"] == metrics["Queue depth"] == metrics["Dead letters"] == "0"
    assert results["app_url"].startswith("http://127.0.0.1:")
    assert results["app_health"] == "ok"


_04_PARAMETERS: dict[str, Any] = {"N_PRODUCTS": 200, "EDITS": 80}


def _check_04_sync_pipeline(results: dict[str, Any]) -> None:
    n = _04_PARAMETERS["N_PRODUCTS"]
    assert results["first_relay_step"] == {"claimed": 100, "published": 100}
    assert results["initial_embedded"] == n
    # Duplicates find nothing to do; a price change re-uses the stored vector.
    assert results["duplicates"] == {"received": 10, "embedded": 0, "current": 5}
    assert results["price_only"] == {"received": 5, "embedded": 0, "reused": 5}
    assert results["edit_found"] is True and results["freshness_seconds"] < 60
    assert results["killed_holding"] > 0 and results["indexer_restarts"] >= 1
    assert results["drift_after_kill"] == 0
    assert results["wiped_missing"] == n and results["backfill_enqueued"] == n
    assert results["drift_after_backfill"] == 0
    assert len(results["dead_letter_errors"]) == 1
    assert "no text to embed" in results["dead_letter_errors"][0]
    assert results["dead_letter_receives"] == [3]
    assert results["healthy_indexed_past_poison"] is True
    assert results["redriven"] == 1
    assert results["final_drift"] == 0
    assert results["final_products"] == results["final_vectors"] == n + 2


EXPECTATIONS: dict[str, Expectation] = {
    "04_sync_pipeline": Expectation(check=_check_04_sync_pipeline, parameters=_04_PARAMETERS),
    "05_streamlit_app": Expectation(check=_check_05_streamlit_app, parameters=_05_PARAMETERS),
    "03_postgres_source_of_truth": Expectation(
        check=_check_03_postgres_source_of_truth, parameters=_03_PARAMETERS
    ),
    "02_vector_index": Expectation(check=_check_02_vector_index, parameters=_02_PARAMETERS),
    "01_prototype_search": Expectation(
        check=_check_01_prototype_search, parameters=_01_PARAMETERS
    ),
    "06_deploy_with_pulumi": Expectation(
        check=_check_06_deploy_with_pulumi,
        parameters={"DEPLOY": False, "STACK": "nbtest"},
    ),
}
