"""End to end in a real browser: Playwright drives Debian's Chromium against the app that
``refarch up`` started (``streamlit run`` on a free port on 127.0.0.1), with the real
Postgres, index server, relay and indexer behind it.

Type a query, see ranked results, edit a product's description in the app, wait until the
app says the edit is searchable, then find that product with a query that only its new text
matches. ``st.dataframe`` draws on a canvas, so cells are read through the grid's ARIA roles.
Screenshots go to ``test-output/app/`` for people to look at.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from refarch.bootstrap import ROLE_NAMES, local_postgres, role_url
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.paths import TEST_OUTPUT
from tests.support.stack import Stack

OUTPUT = TEST_OUTPUT / "app"
#: Milliseconds for the page to react (a search embeds the query; 2 cores are shared).
UI_TIMEOUT = 60_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator:
    from playwright.sync_api import sync_playwright

    url = stack.status["app_url"]
    with urllib.request.urlopen(url + "_stcore/health", timeout=30) as response:
        assert response.read() == b"ok"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT)
        # A product name must never run script: any alert() would land here.
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request, page) -> Iterator[None]:
    """A failing test leaves a picture of the page in test-output/app/."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(OUTPUT / f"failure-{request.node.name}.png"), full_page=True)


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot once no element is faded as stale by a rerun in progress
    (the live panels rerun every second or two)."""
    page.wait_for_function("() => !document.querySelector(\"[data-stale='true']\")")
    page.screenshot(path=str(OUTPUT / name), full_page=True)


def grid_rows(page, key: str) -> list[list[str]]:
    """The data rows of the ``st.dataframe`` with ``key``, read through the grid's roles."""
    grid = page.locator(f".st-key-{key} [role='grid']")
    rows = []
    for row in grid.locator("[role='row']").all():
        cells = [cell.inner_text().strip() for cell in row.locator("[role='gridcell']").all()]
        if cells:
            rows.append(cells)
    return rows


def grid_header(page, key: str) -> list[str]:
    grid = page.locator(f".st-key-{key} [role='grid']")
    return [h.inner_text().strip() for h in grid.locator("[role='columnheader']").all()]


def search(page, query: str) -> None:
    """Type ``query`` into the search box and wait until the app has answered it."""
    box = page.locator(".st-key-q input")
    box.fill(query)
    box.press("Enter")
    # The caption above the table names the query once its results are drawn.
    page.get_by_text(f"results for “{query}”").wait_for()
    page.locator(".st-key-results [role='grid']").wait_for(state="attached")


def wait_for_first_row(page, column: str, value: str) -> list[str]:
    header = grid_header(page, "results")
    index = header.index(column)
    page.wait_for_function(
        """([index, value]) => {
            const row = document.querySelector(
                ".st-key-results [role='grid'] [role='row'][aria-rowindex='2']");
            if (!row) return false;
            const cells = row.querySelectorAll("[role='gridcell']");
            return cells.length > index && cells[index].innerText.trim() === value;
        }""",
        arg=[index, value],
    )
    return grid_rows(page, "results")[0]


def test_search_edit_and_find_by_the_new_text(page, stack: Stack) -> None:
    search(page, "keep my coffee hot on the commute")
    header = grid_header(page, "results")
    assert header[:8] == ["Rank", "Score", "Name", "SKU", "Category", "Price", "Description",
                          "Index"]
    rows = grid_rows(page, "results")
    assert len(rows) == 10
    assert [row[0] for row in rows] == [str(rank) for rank in range(1, 11)]
    scores = [float(row[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert "q=keep+my+coffee" in page.url or "q=keep%20my%20coffee" in page.url
    screenshot(page, "search.png")

    # Edit the third result's description in the app.
    target_name, target_sku = rows[2][2], rows[2][3]
    page.locator(".st-key-edit_id").click()
    page.get_by_role("option", name=f"{target_name} ({target_sku})").click()
    page.get_by_text(f"Editing {target_name} ({target_sku})").wait_for()
    description = page.locator(".st-key-edit_description textarea")
    new_text = "A flag-making kit: sew bright nylon banners for parades and regattas."
    description.fill(new_text)
    page.locator(".st-key-edit_save button").click()
    page.get_by_text(f"Saved {target_sku}").wait_for()

    # The app follows the edit through the pipeline until the index has it.
    page.locator(".st-key-tracked_table [role='gridcell']", has_text="searchable").wait_for(
        state="attached"
    )
    tracked = grid_rows(page, "tracked_table")
    assert any(target_sku in row[0] and "searchable" in row[-1] for row in tracked), tracked

    # Nothing in the catalog is about flags: only the new text matches this query.
    search(page, "kit for sewing parade banners")
    first = wait_for_first_row(page, "SKU", target_sku)
    assert first[2] == target_name
    assert first[6] == new_text
    # Nothing went wrong on the way: no error message, no exception box.
    assert page.get_by_text("Could not").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "after-edit.png")
    assert Path(OUTPUT / "search.png").stat().st_size > 10_000


def test_sync_status_tab(page, stack: Stack) -> None:
    page.get_by_role("tab", name="Sync status").click()
    page.locator(".st-key-health_table [role='grid']").wait_for(state="attached")
    assert "view=Sync" in page.url  # the tab is part of a shareable URL too
    page.locator("[data-testid='stMetricLabel']", has_text="Products").wait_for()
    metrics = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("[data-testid='stMetric']")]
            .map(m => [m.querySelector("[data-testid='stMetricLabel']").innerText.trim(),
                       m.querySelector("[data-testid='stMetricValue']").innerText.trim()]))"""
    )
    with psycopg.connect(stack.status["database_url"], autocommit=True) as conn:
        products = conn.execute("SELECT count(*) FROM products").fetchone()[0]
    assert metrics["Products"] == f"{products:,}", metrics
    health = {row[0]: row[1] for row in grid_rows(page, "health_table")}
    for name in ("relay", "indexer-1", "index-server", "app"):
        assert health.get(name) == "up", health
    screenshot(page, "status.png")


#: A product name that is a link, an image with a script, emphasis, a colour, LaTeX and bare
#: links, if the page interpreted it; it must show exactly as typed.
HOSTILE_NAME = ("[Login](https://evil.example) <img src=x onerror=alert(1)> **bold** :red[red] "
                "$x^2$ www.evil.example me@evil.example")


def shown(locator) -> str:
    """The text a locator shows, without the invisible word joiners that keep links literal."""
    return locator.inner_text().replace("\u2060", "").strip()


def settle(page) -> None:
    """Wait until no element is faded as stale by a rerun in progress."""
    page.wait_for_function("() => !document.querySelector(\"[data-stale='true']\")")


def test_hostile_names_render_as_typed(page, stack: Stack) -> None:
    page.get_by_role("tab", name="Search").click()
    sku = f"H-{uuid.uuid4().hex[:8]}"
    label = f"{HOSTILE_NAME} ({sku})"
    page.locator(".st-key-add_expander summary").click()
    page.locator(".st-key-add_sku input").fill(sku)
    page.locator(".st-key-add_name input").fill(HOSTILE_NAME)
    page.locator(".st-key-add_price input").fill("12")
    page.locator(".st-key-add_submit button").click()
    added = page.locator("[data-testid='stAlert']", has_text=sku)
    added.wait_for()
    assert shown(added) == f"Added {sku} ({HOSTILE_NAME})."
    page.locator(".st-key-tracked_table [role='row']", has_text=sku).locator(
        "[role='gridcell']", has_text="searchable").wait_for(state="attached")
    try:
        box = page.locator(".st-key-q input")
        box.fill(HOSTILE_NAME)
        box.press("Enter")
        page.locator(".st-key-results [role='row']", has_text=sku).first.wait_for(state="attached")
        caption = page.locator("[data-testid='stCaptionContainer']", has_text="results for")
        assert f"results for “{HOSTILE_NAME}”, best match first." in shown(caption)
        settle(page)
        page.locator(".st-key-edit_id").click()
        page.get_by_role("option", name=sku).click()
        editing = page.locator("[data-testid='stMarkdownContainer']", has_text=f"({sku})")
        editing.wait_for()
        assert shown(editing) == f"Editing {label}"
        main = page.locator("[data-testid='stMain']")
        links = main.locator("a[href*='evil.example']")
        assert links.count() == 0, links.evaluate_all("els => els.map(e => e.outerHTML)")
        assert main.locator("img[src='x']").count() == 0
        assert main.locator("strong", has_text=re.compile(r"^bold$")).count() == 0
        assert main.locator(".katex, [class*='stMarkdownColored']").count() == 0
        assert page.dialogs == []
        screenshot(page, "hostile-name.png")
    finally:
        with psycopg.connect(stack.status["database_url"], autocommit=True) as conn:
            conn.execute("DELETE FROM products WHERE sku = %s", (sku,))


#: Each supervised process (its PGAPPNAME) and the role it must connect as.
SERVICE_ROLES = {"refarch-app": ROLE_NAMES["app"], "refarch-relay": ROLE_NAMES["relay"],
                 "refarch-indexer-1": ROLE_NAMES["indexer"]}


def test_each_service_connects_as_its_own_role(page, stack: Stack) -> None:
    """The privilege rule, on the running stack: the app (its status panel included), the relay
    and the indexer connect as their roles, never as the owner; the app's role cannot touch
    what is not its business."""
    server = local_postgres(stack.settings)
    assert server is not None
    owner_url = stack.status["database_url"]
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("ALTER SYSTEM SET log_connections = on")
        owner.execute("SELECT pg_reload_conf()")
        log_start = server.log_file.stat().st_size
        try:
            # The status tab refreshes every 2 s, each refresh a new connection of the app's.
            page.get_by_role("tab", name="Sync status").click()
            page.locator(".st-key-health_table [role='grid']").wait_for(state="attached")
            time.sleep(5)
            seen = owner.execute(
                "SELECT application_name, usename FROM pg_stat_activity "
                "WHERE application_name LIKE 'refarch-%%'"
            ).fetchall()
        finally:
            owner.execute("ALTER SYSTEM RESET log_connections")
            owner.execute("SELECT pg_reload_conf()")
    with open(server.log_file, encoding="utf-8", errors="replace") as log:
        log.seek(log_start)
        logged = re.findall(r"connection authorized: user=(\S+) .*application_name=(refarch-\S+)",
                            log.read())
    held = {(name, user) for name, user in seen}
    assert {(n, u) for n, u in held if n in SERVICE_ROLES} == set(SERVICE_ROLES.items()), held
    app_logins = {user for user, name in logged if name == "refarch-app"}
    assert app_logins == {ROLE_NAMES["app"]}, logged  # the status panel's connections too

    app_url = role_url(stack.settings, "app")
    for statement in ("SELECT * FROM outbox", "DELETE FROM outbox", "TRUNCATE products",
                      "DROP TABLE products", "INSERT INTO reconcile_runs DEFAULT VALUES",
                      "SELECT * FROM queue_dedup", "UPDATE queue_messages SET visible_at = now()",
                      "CREATE ROLE intruder"):
        with psycopg.connect(app_url, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
