"""The Streamlit page under AppTest, against the real local stack (Postgres, index, pipeline).

Widgets are found by their stable keys. The services are injected the way the page documents
(``st.session_state[SERVICES_KEY]``), built from the stack's settings by the same function
the app uses for itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from refarch.bootstrap import make_queue
from refarch.queue.port import OutgoingMessage
from refarch.webapp.services import SERVICES_KEY, AppServices
from refarch.webapp.text import literal
from tests.app.app_stack import CATALOG_SIZE
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until

APP = ROOT / "app" / "streamlit_app.py"
#: Seconds one script run may take (a search embeds the query on a busy machine).
RUN_TIMEOUT = 60
#: Seconds an edit may take to become searchable through the pipeline.
SYNC_TIMEOUT = 60

pytestmark = pytest.mark.slow


def _app(services: AppServices, **query_params: str | list[str]) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    at.session_state[SERVICES_KEY] = services
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest, key: str) -> pd.DataFrame:
    """The table the page draws in the container ``key``."""
    return at.container(key=key).dataframe[0].value


def _has_table(at: AppTest, key: str) -> bool:
    try:
        at.container(key=key)
    except KeyError:
        return False
    return True


def _results(at: AppTest) -> pd.DataFrame:
    return _table(at, "results")


def _search(at: AppTest, query: str) -> pd.DataFrame:
    at.text_input(key="q").set_value(query).run()
    assert not at.exception, at.exception
    return _results(at)


def _run_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = SYNC_TIMEOUT) -> None:
    """Rerun the page (every 0.3 s, as its live panels do) until ``done(at)``."""

    def rerun_done() -> bool:
        at.run()
        assert not at.exception, at.exception
        return done(at)

    assert done(at) or wait_until(rerun_done, timeout, interval=0.3), f"not done after {timeout} s"


def _tracked_state(at: AppTest, sku: str) -> str:
    if not _has_table(at, "tracked_table"):
        return ""
    table = _table(at, "tracked_table")
    rows = table[table["Product"].str.contains(sku, regex=False)]
    return str(rows["State"].iloc[0]) if len(rows) else ""


def _texts(elements) -> list[str]:
    return [element.value for element in elements]


def _owner(stack: Stack) -> psycopg.Connection:
    return psycopg.connect(stack.status["database_url"], autocommit=True)


def test_empty_state_before_a_query(services: AppServices) -> None:
    at = _app(services)
    assert any("Type what you are looking for" in text for text in _texts(at.info))
    assert not _has_table(at, "results")
    assert at.tabs[0].label == "Search"


def test_search_shows_ranked_results_read_from_postgres(services: AppServices, stack: Stack) -> None:
    at = _app(services)
    results = _search(at, "keep my coffee hot on the commute")
    assert list(results.columns) == [
        "Rank", "Score", "Name", "SKU", "Category", "Price", "Description", "Index"
    ]
    assert len(results) == 10
    assert list(results["Rank"]) == list(range(1, 11))
    assert list(results["Score"]) == sorted(results["Score"], reverse=True)
    with _owner(stack) as conn:
        rows = {sku: (name, float(price), description) for sku, name, price, description in
                conn.execute("SELECT sku, name, price, description FROM products WHERE sku = ANY(%s)",
                             (list(results["SKU"]),)).fetchall()}
    for _, row in results.iterrows():
        assert rows[row["SKU"]] == (row["Name"], row["Price"], row["Description"])
    assert set(results["Index"]) == {"searchable"}


def test_filters_and_a_shared_url(services: AppServices, stack: Stack) -> None:
    with _owner(stack) as conn:
        # The category with the most products in the price range: enough for two pages of 5.
        chosen, in_range = conn.execute(
            "SELECT category, count(*) FROM products WHERE price BETWEEN 5 AND 300 "
            "GROUP BY category ORDER BY count(*) DESC, category LIMIT 1"
        ).fetchone()
    assert in_range >= 10
    assert chosen in services.categories()
    # Opening a shared link restores the query, the filters and the page size.
    at = _app(services, q="gift for someone who likes the outdoors", cat=[chosen],
              pmin="5", pmax="300", k="5")
    assert at.text_input(key="q").value == "gift for someone who likes the outdoors"
    assert at.multiselect(key="cat").value == [chosen]
    assert (at.number_input(key="pmin").value, at.number_input(key="pmax").value) == (5, 300)
    assert at.selectbox(key="k").value == 5
    results = _results(at)
    assert len(results) == 5
    assert set(results["Category"]) == {chosen}
    assert results["Price"].between(5, 300).all()
    # "More results" fetches the next page, keeping the first in place.
    at.button(key="more").click().run()
    more = _results(at)
    assert len(more) == 10
    assert list(more["SKU"][:5]) == list(results["SKU"])
    assert set(more["Category"]) == {chosen}


def test_no_match_is_a_clear_empty_state(services: AppServices) -> None:
    at = _app(services, q="travel mug", pmin="999999")
    assert not _has_table(at, "results")
    assert any("No products match" in text for text in _texts(at.info))
    at = _app(services, q="travel mug", pmin="50", pmax="10")
    assert _texts(at.warning) == [literal("Max price 10 is below min price 50: no product can match")]
    assert not _has_table(at, "results") and not at.info


def test_edit_becomes_searchable_through_the_pipeline(services: AppServices) -> None:
    at = _app(services)
    results = _search(at, "a warm blanket for cold evenings")
    sku = results["SKU"].iloc[2]
    at.selectbox(key="edit_id").select_index(2).run()
    assert at.text_input(key="edit_name").value == results["Name"].iloc[2]
    new_text = "Hand-carved chess set with magnetic pieces, for playing on trains and planes."
    at.text_area(key="edit_description").set_value(new_text)
    at.button(key="edit_save").click().run()
    assert not at.exception, at.exception
    assert any(f"Saved {literal(sku)}" in text for text in _texts(at.success))
    _run_until(at, lambda a: "searchable" in _tracked_state(a, sku))
    assert "searchable" in _tracked_state(at, sku)
    # Nothing in the catalog is a game: only the new text matches this query.
    found = _search(at, "magnetic chess set to play on a train")
    assert not at.error, _texts(at.error)
    assert found["SKU"].iloc[0] == sku
    assert found["Description"].iloc[0] == new_text
    assert found["Index"].iloc[0] == "searchable"


def test_validation_errors_show_next_to_the_field_and_write_nothing(
    services: AppServices, stack: Stack
) -> None:
    at = _app(services)
    results = _search(at, "running shoes")
    at.selectbox(key="edit_id").select_index(0).run()
    product_id = at.session_state["edit_loaded"]
    before = services.get_product(product_id)

    at.text_input(key="edit_name").set_value("   ")
    at.text_area(key="edit_description").set_value("This must not be saved")
    at.button(key="edit_save").click().run()
    errors = _texts(at.error)
    assert errors == ["Name must not be empty"], errors
    _assert_error_follows(at, "edit_name", "Name must not be empty")
    assert services.get_product(product_id) == before

    at.text_input(key="edit_name").set_value(before.name)
    at.text_input(key="edit_price").set_value("-5")
    at.button(key="edit_save").click().run()
    assert _texts(at.error) == [literal("Price must not be negative (got -5)")]
    _assert_error_follows(at, "edit_price", "Price must not be negative")
    assert services.get_product(product_id) == before

    # Adding a product with a SKU that is taken: the error sits under the SKU field.
    taken = results["SKU"].iloc[0]
    count = _count_products(stack)
    at.text_input(key="add_sku").set_value(taken)
    at.text_input(key="add_name").set_value("A product that must not be added")
    at.text_input(key="add_price").set_value("10")
    at.button(key="add_submit").click().run()
    assert any(literal(f"SKU '{taken}' is already used") in text for text in _texts(at.error))
    _assert_error_follows(at, "add_sku", "already used")
    assert _count_products(stack) == count


def _count_products(stack: Stack) -> int:
    with _owner(stack) as conn:
        return conn.execute("SELECT count(*) FROM products").fetchone()[0]


def _assert_error_follows(at: AppTest, key: str, text: str) -> None:
    """The error message is the element drawn right after the widget ``key``."""
    nodes = list(_walk(at._tree))
    for position, node in enumerate(nodes):
        if getattr(node, "key", None) == key:
            following = nodes[position + 1]
            assert following.type == "error" and text in following.value, following
            return
    raise AssertionError(f"no widget with key {key!r}")


def _walk(node):
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    if node.type not in ("root", "main", "sidebar", "event", "bottom"):
        yield node
    for child in children.values():
        yield from _walk(child)


def test_add_then_delete_a_product(services: AppServices) -> None:
    at = _app(services)
    sku = f"TEST-{uuid.uuid4().hex[:8].upper()}"
    at.text_input(key="add_sku").set_value(sku)
    at.text_input(key="add_name").set_value("Apiary beekeeping smoker")
    at.text_area(key="add_description").set_value(
        "A stainless steel beekeeping smoker with leather bellows that calms honeybees while "
        "you inspect the hive."
    )
    at.text_input(key="add_category").set_value("Garden")
    at.text_input(key="add_price").set_value("$39.50")
    at.button(key="add_submit").click().run()
    assert not at.exception, at.exception
    assert any(f"Added {literal(sku)}" in text for text in _texts(at.success))
    assert at.text_input(key="add_sku").value == ""  # the form is cleared for the next one
    _run_until(at, lambda a: "searchable" in _tracked_state(a, sku))

    results = _search(at, "smoker to calm the bees at my hive")
    assert results["SKU"].iloc[0] == sku
    assert results["Price"].iloc[0] == 39.5
    at.selectbox(key="edit_id").select_index(0).run()
    at.button(key="edit_delete").click().run()
    assert any(f"Deleted {literal(sku)}" in text for text in _texts(at.success))
    _run_until(at, lambda a: "removed from search" in _tracked_state(a, sku))
    results = _search(at, "smoker to calm the bees at my hive")
    assert sku not in set(results["SKU"])


#: A product name that is a link, an image, HTML, emphasis, a Streamlit colour, LaTeX and an
#: arrow, if the page interpreted it instead of showing it.
HOSTILE_NAME = ("[Login](https://evil.example) <img src=x onerror=alert(1)> **bold** "
                ":red[red] $x^2$ a -> b")
HOSTILE_CATEGORY = "<b>Garden</b>"
HOSTILE_PRICE = "[9](https://evil.example)"


def _rendered_markdown(at: AppTest) -> list[str]:
    """The source of every element the page draws as Markdown, and the widgets' tooltips."""
    texts = [element.value for kind in (at.markdown, at.caption, at.info, at.success,
                                        at.warning, at.error) for element in kind]
    return texts + [w.help for w in at.text_input if w.help]


def _assert_nothing_interpreted(at: AppTest) -> None:
    """No element's Markdown holds a piece of the hostile text unescaped."""
    for text in _rendered_markdown(at):
        for raw in ("[Login](", "<img", "**bold**", ":red[", "$x^2$", " -> ", "<b>", "[9]("):
            assert not re.search(r"(?<!\\)" + re.escape(raw), text), (raw, text)


def test_hostile_text_is_shown_as_typed_never_as_markdown(services: AppServices, stack: Stack) -> None:
    sku = f"**H{uuid.uuid4().hex[:8]}**[x](https://evil.example)"
    label = f"{HOSTILE_NAME} ({sku})"
    # The query comes from a shared URL (?q=...): the results caption quotes it literally.
    at = _app(services, q=HOSTILE_NAME)
    assert f"results for “{literal(HOSTILE_NAME)}”, best match first." in _texts(at.caption)[0]
    _assert_nothing_interpreted(at)

    at.text_input(key="add_sku").set_value(sku)
    at.text_input(key="add_name").set_value(HOSTILE_NAME)
    at.text_input(key="add_category").set_value(HOSTILE_CATEGORY)
    at.text_input(key="add_price").set_value("12")
    at.button(key="add_submit").click().run()
    assert not at.exception, at.exception
    assert _texts(at.success) == [f"Added {literal(sku)} ({literal(HOSTILE_NAME)})."]
    _run_until(at, lambda a: "searchable" in _tracked_state(a, sku))
    try:
        results = _search(at, HOSTILE_NAME)
        row = results[results["SKU"] == sku]
        assert list(row["Name"]) == [HOSTILE_NAME]  # a table cell is plain text as it is
        at.selectbox(key="edit_id").select(label).run()
        assert f"Editing **{literal(label)}**" in _texts(at.markdown)
        assert literal(HOSTILE_CATEGORY) in at.text_input(key="edit_category").help
        # A validation error quotes the bad input: literally too.
        at.text_input(key="edit_price").set_value(HOSTILE_PRICE)
        at.button(key="edit_save").click().run()
        assert _texts(at.error) == [literal(f"Price {HOSTILE_PRICE!r} is not a number")]
        _assert_nothing_interpreted(at)
    finally:
        with _owner(stack) as conn:
            found = conn.execute("SELECT id FROM products WHERE sku = %s", (sku,)).fetchone()
        if found is not None:
            services.delete_product(found[0])


def test_status_panel_shows_the_pipeline_and_redrives_dead_letters(
    services: AppServices, stack: Stack
) -> None:
    # A message no indexer can handle goes to the dead-letter queue.
    queue = make_queue(stack.settings)
    try:
        before = queue.stats().dead
        poison = uuid.uuid4().hex
        queue.send_batch([OutgoingMessage("not a change message", f"poison-{poison}", poison)])
        assert wait_until(lambda: queue.stats().dead > before, SYNC_TIMEOUT, interval=0.3), (
            "the poison message never reached the DLQ"
        )
    finally:
        queue.close()

    at = _app(services, view="Sync status")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    expected = {"Products", "Outbox pending", "Queue depth", "In flight", "Dead letters",
                "Index vectors", "Last reconcile drift", "Freshness lag"}
    assert expected <= set(metrics), metrics
    with _owner(stack) as conn:
        products = conn.execute("SELECT count(*) FROM products").fetchone()[0]
    assert int(metrics["Products"].replace(",", "")) == products
    assert int(metrics["Dead letters"]) >= 1
    health = _table(at, "health_table")
    up = dict(zip(health["Service"], health["Health"], strict=True))
    for name in ("relay", "indexer-1", "index-server", "app"):
        assert up.get(name) == "up", up
    letters = _table(at, "dlq_table")
    assert "not a change message" in set(letters["Body"])
    at.button(key="redrive").click().run()
    assert not at.exception, at.exception
    assert any("from the dead-letter queue back to the queue" in text for text in _texts(at.success))


def test_an_unreachable_index_is_a_message_not_a_traceback(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No injected services: the page builds its own from the environment, which points at
    # an index port where nothing listens.
    for key, value in stack.env.items():
        if key.startswith("REFARCH_") or key == "DATABASE_URL":
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("REFARCH_INDEX_PORT", str(free_port()))
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Could not connect to the database and the index:")


def test_catalog_is_the_stacks(stack: Stack) -> None:
    assert stack.status["products"] == CATALOG_SIZE
    assert stack.status["app_url"].startswith("http://127.0.0.1:")
    assert Path(stack.settings.home).is_dir()
