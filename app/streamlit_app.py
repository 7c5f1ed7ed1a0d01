"""The refarch app: semantic search, live editing and sync status over Postgres.

Run it with ``refarch app`` (or ``refarch up``, which starts it with the rest of the stack).
The page only draws widgets and calls :class:`refarch.webapp.services.AppServices`; every rule
(validation, search, versions, status) lives in ``refarch``. Services are built once per
process from the environment's settings; tests inject their own under ``SERVICES_KEY`` in
``st.session_state`` before the first run.

Widget keys are stable (tests and the browser test find widgets by them). The search box,
filters and tab are bound to the URL (``bind="query-params"``), so a search can be shared.

Every string the user or the data supplied (product fields, the query, error messages, which
quote values) reaches a Markdown element through :func:`refarch.webapp.text.literal`, so it
shows as typed: a product named ``[Login](https://evil.example)`` is text, not a link.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from refarch.errors import FieldValidationError, RefarchError
from refarch.logs import configure
from refarch.pipeline.progress import IndexingState
from refarch.settings import Settings
from refarch.webapp.services import SERVICES_KEY, AppServices, ResultRow, build_app_services
from refarch.webapp.text import literal
from refarch.webapp.url_state import DEFAULT_TOP_K, TOP_K_CHOICES, SearchParams

log = logging.getLogger("refarch.app")
T = TypeVar("T")

#: The tabs, also the values of ``?view=`` in the URL.
SEARCH_TAB, STATUS_TAB = "Search", "Sync status"
#: Seconds between refreshes of the "Your changes" panel (one small query per refresh).
REFRESH_SECONDS = 1.0
#: Seconds between refreshes of the sync status tab (it asks every part of the pipeline).
STATUS_REFRESH_SECONDS = 2.0
#: Recent changes the "Your changes" panel follows.
MAX_TRACKED = 20
EDIT_FIELDS = ("name", "description", "category", "price")
ADD_FIELDS = ("sku", "name", "description", "category", "price")


# --- services and error handling --------------------------------------------------------------


@st.cache_resource(show_spinner="Connecting to the database and the index…")
def _process_services() -> AppServices:
    """One set of services per process, from the environment's settings."""
    settings = Settings.from_env()
    configure(settings.log_level)  # the app's log lines, passwords redacted
    return build_app_services(settings)


def services() -> AppServices:
    """The injected services (tests) or this process's own."""
    injected = st.session_state.get(SERVICES_KEY)
    return injected if injected is not None else _process_services()


def attempt(action: Callable[[], T], what: str) -> T | None:
    """Run ``action``; show a failure as a message (never a traceback) and return None."""
    try:
        return action()
    except RefarchError as exc:
        st.error(f"Could not {what}: {literal(exc)}")
    except Exception as exc:  # a bug or an outage: tell the user, keep the details in the log
        log.exception("event=app_error action=%r", what)
        st.error(f"Could not {what}: unexpected {type(exc).__name__}. Details are in the app log.")
    return None


def _callback_error(target: str, what: str, exc: Exception) -> None:
    """Record an error raised in a callback, to be shown where ``target`` is drawn."""
    if isinstance(exc, RefarchError):
        st.session_state[f"{target}_message"] = ("error", f"Could not {what}: {literal(exc)}")
    else:
        log.exception("event=app_error action=%r", what)
        st.session_state[f"{target}_message"] = (
            "error",
            f"Could not {what}: unexpected {type(exc).__name__}. Details are in the app log.",
        )


def _show_message(target: str) -> None:
    """Show the message a callback left for ``target`` (Markdown, user parts made literal)."""
    message = st.session_state.pop(f"{target}_message", None)
    if message:
        kind, text = message
        getattr(st, kind)(text)


def table(key: str, frame: pd.DataFrame, **options: Any) -> None:
    """A read-only table inside a container keyed ``key`` (tests and the browser find it there;
    a display-only ``st.dataframe`` has no key of its own)."""
    with st.container(key=key):
        st.dataframe(frame, hide_index=True, **options)


# --- tracking what this session changed -------------------------------------------------------


def _track(product_id: int, label: str, action: str) -> None:
    tracked: dict[int, dict[str, Any]] = st.session_state.setdefault("tracked", {})
    tracked.pop(product_id, None)
    tracked[product_id] = {"label": label, "action": action, "saved_at": time.monotonic(),
                           "searchable_after": None}
    while len(tracked) > MAX_TRACKED:
        tracked.pop(next(iter(tracked)))


def _state_text(state: IndexingState, entry: dict[str, Any]) -> str:
    if state.is_synced:
        if entry["searchable_after"] is None:
            entry["searchable_after"] = time.monotonic() - entry["saved_at"]
        seconds = entry["searchable_after"]
        done = "removed from search" if state.state == "deleted" else "searchable"
        return f"{done} ({seconds:.1f} s after saving)"
    return "removing from the index…" if state.state == "removing" else "indexing…"


@st.fragment(run_every=REFRESH_SECONDS)
def tracked_changes_panel() -> None:
    """Which of this session's changes are still being indexed, and when each became live."""
    tracked: dict[int, dict[str, Any]] = st.session_state.get("tracked", {})
    if not tracked:
        return
    states = attempt(lambda: services().indexing_states(list(tracked)), "check indexing progress")
    if states is None:
        return
    rows = []
    for product_id, entry in reversed(tracked.items()):
        state = states[product_id]
        rows.append({
            "Product": entry["label"],
            "Change": entry["action"],
            "Postgres version": state.postgres_version,
            "Indexed version": state.indexed_version,
            "State": _state_text(state, entry),
        })
    st.markdown("**Your changes**")
    table("tracked_table", pd.DataFrame(rows))


# --- search -----------------------------------------------------------------------------------


def _reset_pages() -> None:
    st.session_state["pages"] = 1


def _more_results() -> None:
    st.session_state["pages"] = st.session_state.get("pages", 1) + 1


def search_controls(categories: list[str]) -> SearchParams | None:
    """Draw the search box and filters; return the search to run, or None (with a message
    saying why: nothing typed yet, or an input that cannot match)."""
    st.text_input(
        "Search products",
        key="q",
        bind="query-params",
        on_change=_reset_pages,
        placeholder="Describe what you need, e.g. keep my coffee hot on the commute",
    )
    cat_col, min_col, max_col, k_col = st.columns([3, 1, 1, 1])
    with cat_col:
        st.multiselect(
            "Category", categories, key="cat", bind="query-params", on_change=_reset_pages,
            placeholder="All categories",
        )
    with min_col:
        st.number_input(
            "Min price", min_value=0.0, value=None, step=1.0, format="%.2f", key="pmin",
            bind="query-params", on_change=_reset_pages, placeholder="any",
        )
    with max_col:
        st.number_input(
            "Max price", min_value=0.0, value=None, step=1.0, format="%.2f", key="pmax",
            bind="query-params", on_change=_reset_pages, placeholder="any",
        )
    with k_col:
        st.selectbox(
            "Results per page", TOP_K_CHOICES, index=TOP_K_CHOICES.index(DEFAULT_TOP_K),
            key="k", bind="query-params", on_change=_reset_pages,
        )
    query = (st.session_state.get("q") or "").strip()
    if not query:
        st.info("Type what you are looking for above: results are ranked by meaning, not by "
                "matching words. Use the filters to narrow them down.")
        return None
    try:
        return SearchParams.from_inputs(
            query=query,
            categories=st.session_state.get("cat") or (),
            price_min=st.session_state.get("pmin"),
            price_max=st.session_state.get("pmax"),
            top_k=st.session_state.get("k") or DEFAULT_TOP_K,
            pages=st.session_state.get("pages", 1),
        )
    except FieldValidationError as exc:
        st.warning(literal(exc))
        return None


def results_table(rows: list[ResultRow]) -> None:
    """The ranked results, one row per product, read from Postgres."""
    frame = pd.DataFrame(
        {
            "Rank": [row.rank for row in rows],
            "Score": [row.score for row in rows],
            "Name": [row.product.name for row in rows],
            "SKU": [row.product.sku for row in rows],
            "Category": [row.product.category or "" for row in rows],
            "Price": [float(row.product.price) for row in rows],
            "Description": [row.product.description for row in rows],
            "Index": ["searchable" if row.is_current else "indexing…" for row in rows],
        }
    )
    table(
        "results",
        frame,
        column_config={
            "Rank": st.column_config.NumberColumn(width="small"),
            "Score": st.column_config.NumberColumn(format="%.3f", width="small"),
            "Name": st.column_config.TextColumn(width="medium"),
            "Price": st.column_config.NumberColumn(format="$%.2f", width="small"),
            "Description": st.column_config.TextColumn(width="large"),
            "Index": st.column_config.TextColumn(
                width="small",
                help="searchable: the index holds this row's current version; "
                "indexing…: a newer edit is on its way to the index",
            ),
        },
    )


def search_tab() -> None:
    """Search box, filters, ranked results, editor and add form."""
    svc = services()
    categories = attempt(svc.categories, "load the categories") or []
    params = search_controls(categories)
    rows: list[ResultRow] = []
    if params is not None:
        found = attempt(lambda: svc.search(params), "search")
        rows = found or []
        if found is not None and not rows:
            st.info(f"No products match “{literal(params.query)}” with these filters. Try other words, "
                    "fewer categories or a wider price range.")
        elif rows:
            st.caption(f"{len(rows)} results for “{literal(params.query)}”, best match first.")
            results_table(rows)
            if len(rows) >= params.limit and params.can_show_more:
                st.button("More results", key="more", on_click=_more_results)
    tracked_changes_panel()
    editor(rows, categories)
    add_form()


# --- editing ----------------------------------------------------------------------------------


def _choose_for_edit() -> None:
    """Open the result just chosen in the editor (a fresh read from Postgres)."""
    label = st.session_state.get("edit_id")
    product_id = st.session_state.get("edit_choices", {}).get(label)
    if product_id is not None:
        _open_in_editor(product_id)


def _open_in_editor(product_id: int) -> None:
    st.session_state.pop("edit_errors", None)
    try:
        product = services().get_product(product_id)
    except Exception as exc:  # noqa: BLE001 - _callback_error shows it (and logs a bug)
        _callback_error("edit", "load the product", exc)
        _close_editor()
        return
    st.session_state.update({
        "edit_loaded": product.id,
        "edit_title": f"{product.name} ({product.sku})",
        "edit_version": product.version,
        "edit_name": product.name,
        "edit_description": product.description,
        "edit_category": product.category or "",
        "edit_price": f"{product.price:.2f}",
    })


def _close_editor() -> None:
    for key in ("edit_loaded", "edit_title", "edit_version", "edit_errors"):
        st.session_state.pop(key, None)
    st.session_state["edit_id"] = None


def _save_edit() -> None:
    product_id = st.session_state["edit_loaded"]
    values = {field: st.session_state.get(f"edit_{field}") for field in EDIT_FIELDS}
    try:
        product = services().update_product(
            product_id, expected_version=st.session_state["edit_version"], **values
        )
    except FieldValidationError as exc:
        st.session_state["edit_errors"] = {exc.field: str(exc)}
        return
    except Exception as exc:  # noqa: BLE001 - _callback_error shows it (and logs a bug)
        _callback_error("edit", "save the product", exc)
        return
    st.session_state.pop("edit_errors", None)
    st.session_state["edit_version"] = product.version
    st.session_state["edit_title"] = f"{product.name} ({product.sku})"
    _track(product.id, f"{product.name} ({product.sku})", "edited")
    st.session_state["edit_message"] = (
        "success", f"Saved {literal(product.sku)}. It is searchable with its new text once indexed "
        "(see “Your changes”).")


def _delete() -> None:
    product_id = st.session_state["edit_loaded"]
    try:
        product = services().delete_product(
            product_id, expected_version=st.session_state["edit_version"]
        )
    except Exception as exc:  # noqa: BLE001 - _callback_error shows it (and logs a bug)
        _callback_error("edit", "delete the product", exc)
        return
    _track(product.id, f"{product.name} ({product.sku})", "deleted")
    _close_editor()
    st.session_state["edit_message"] = ("success", f"Deleted {literal(product.sku)}.")


def _field_error(errors: dict[str, str], field: str) -> None:
    if field in errors:
        st.error(literal(errors[field]), icon=":material/error:")


def editor(rows: list[ResultRow], categories: list[str]) -> None:
    """Open one of the results in the editor; edit or delete it there.

    The chooser's options are the results' labels ("name (SKU)"), mapped back to ids through
    ``edit_choices``; the editor stays on its product while the user searches on.
    """
    st.subheader("Edit a product")
    _show_message("edit")
    choices = {f"{row.product.name} ({row.product.sku})": row.product.id for row in rows}
    st.session_state["edit_choices"] = choices
    if st.session_state.get("edit_id") not in choices:
        st.session_state["edit_id"] = None
    st.selectbox(
        "Open a result in the editor", list(choices), index=None, key="edit_id",
        on_change=_choose_for_edit,
        placeholder="Choose one of the results to edit it" if rows else "Search first",
        disabled=not rows,
    )
    if st.session_state.get("edit_loaded") is None:
        return
    errors: dict[str, str] = st.session_state.get("edit_errors", {})
    st.markdown(f"Editing **{literal(st.session_state['edit_title'])}**")
    with st.form("edit_form", border=True):
        st.text_input("Name", key="edit_name")
        _field_error(errors, "name")
        st.text_area("Description", key="edit_description", height=120)
        _field_error(errors, "description")
        left, right = st.columns(2)
        with left:
            st.text_input("Category", key="edit_category",
                          help="One of: " + ", ".join(map(literal, categories))
                          if categories else None)
            _field_error(errors, "category")
        with right:
            st.text_input("Price", key="edit_price", help="e.g. 24.99 or $1,299.00")
            _field_error(errors, "price")
        st.form_submit_button("Save changes", key="edit_save", type="primary",
                              on_click=_save_edit)
    actions = st.columns([1, 1, 4])
    with actions[0]:
        with st.popover("Delete…", key="delete_popover"):
            st.write("The product is removed from Postgres, then from the index.")
            st.button("Delete for good", key="edit_delete", type="primary", on_click=_delete)
    with actions[1]:
        st.button("Close editor", key="edit_close", on_click=_close_editor)


def _add() -> None:
    values = {field: st.session_state.get(f"add_{field}") for field in ADD_FIELDS}
    try:
        product = services().add_product(**values)
    except FieldValidationError as exc:
        st.session_state["add_errors"] = {exc.field: str(exc)}
        return
    except Exception as exc:  # noqa: BLE001 - _callback_error shows it (and logs a bug)
        _callback_error("add", "add the product", exc)
        return
    st.session_state.pop("add_errors", None)
    for field in ADD_FIELDS:
        st.session_state[f"add_{field}"] = ""
    _track(product.id, f"{product.name} ({product.sku})", "added")
    st.session_state["add_message"] = (
        "success", f"Added {literal(product.sku)} ({literal(product.name)}).")


def add_form() -> None:
    """A form to add a product; errors appear under the field they concern."""
    errors: dict[str, str] = st.session_state.get("add_errors", {})
    with st.expander("Add a product", expanded=bool(errors), key="add_expander"):
        _show_message("add")
        with st.form("add_form"):
            sku_col, name_col = st.columns([1, 2])
            with sku_col:
                st.text_input("SKU", key="add_sku")
                _field_error(errors, "sku")
            with name_col:
                st.text_input("Name", key="add_name")
                _field_error(errors, "name")
            st.text_area("Description", key="add_description", height=100)
            _field_error(errors, "description")
            left, right = st.columns(2)
            with left:
                st.text_input("Category", key="add_category")
                _field_error(errors, "category")
            with right:
                st.text_input("Price", key="add_price", placeholder="e.g. 24.99")
                _field_error(errors, "price")
            st.form_submit_button("Add product", key="add_submit", on_click=_add)


# --- sync status ------------------------------------------------------------------------------


def _redrive() -> None:
    try:
        moved = services().redrive()
    except Exception as exc:  # noqa: BLE001 - _callback_error shows it (and logs a bug)
        _callback_error("status", "redrive the dead-letter queue", exc)
        return
    st.session_state["status_message"] = (
        "success", f"Moved {moved} message(s) from the dead-letter queue back to the queue.")


def _count(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _seconds(value: Any) -> str:
    return "–" if value is None else f"{value:.1f} s"


@st.fragment(run_every=STATUS_REFRESH_SECONDS)
def status_panel() -> None:
    """Counts and health of every part of the pipeline, refreshed every few seconds."""
    svc = services()
    report = attempt(svc.status, "read the sync status")
    if report is None:
        return
    _show_message("status")
    reconcile = report.last_reconcile
    first = st.columns(4)
    first[0].metric("Products", _count(report.products))
    first[1].metric("Outbox pending", _count(report.outbox_pending))
    first[2].metric("Queue depth", _count(report.queue_visible),
                    help="Messages waiting for an indexer")
    first[3].metric("In flight", _count(report.queue_in_flight),
                    help="Messages an indexer is working on")
    second = st.columns(4)
    second[0].metric("Dead letters", _count(report.dead_letters))
    second[1].metric("Index vectors", _count(report.index_vectors))
    second[2].metric(
        "Last reconcile drift", _count(reconcile.drift) if reconcile else "never run",
        help=(f"At {reconcile.at}: missing {reconcile.missing}, stale {reconcile.stale}, "
              f"orphaned {reconcile.orphaned}, repaired {reconcile.repaired}")
        if reconcile else "Reconcile compares Postgres with the index; `refarch up` runs it "
        "periodically, `refarch reconcile` on demand.",
    )
    second[3].metric("Freshness lag", _seconds(report.freshness_lag_seconds),
                     help="Age of the oldest change not yet searchable (0 when in sync)")
    for part, error in report.errors.items():
        st.warning(f"{part}: {literal(error)}")

    st.markdown("**Services**")
    if report.processes:
        table("health_table", pd.DataFrame([{
            "Service": p.name,
            "Health": "up" if p.healthy else (p.state or "down"),
            "PID": p.pid,
            "Restarts": p.restarts,
        } for p in report.processes]))
    else:
        st.caption(f"No supervised services (stack: {literal(report.stack.phase or 'unknown')}); "
                   "`refarch up` runs the relay, the indexers and this app.")

    st.markdown("**Dead-letter queue**")
    if not report.dead_letters:
        st.caption("Empty: no message has failed for good.")
        return
    letters = attempt(lambda: svc.dead_letters(20), "list the dead letters") or []
    table("dlq_table", pd.DataFrame([{"Message": d.message_id, "Receives": d.receive_count,
                                      "Error": d.error or "", "Body": d.body} for d in letters]))
    st.button("Redrive all to the queue", key="redrive", on_click=_redrive)


def status_tab() -> None:
    st.caption(f"Refreshed every {STATUS_REFRESH_SECONDS:g} s.")
    status_panel()


# --- page -------------------------------------------------------------------------------------


def main() -> None:
    # However the app is launched (refarch app, refarch up, the container's streamlit run), a
    # bug shows the user a short message, not a traceback; details go to the log.
    st.set_option("client.showErrorDetails", "none")
    st.set_page_config(page_title="refarch · product search", page_icon=":material/search:",
                       layout="wide")
    st.title("Product search")
    if attempt(services, "connect to the database and the index") is None:
        st.stop()
    search, status = st.tabs(
        [SEARCH_TAB, STATUS_TAB], key="view", on_change="rerun", bind="query-params"
    )
    if search.open:
        with search:
            search_tab()
    if status.open:
        with status:
            status_tab()


main()
