"""The attendee's notebook path in a real browser: ``refarch lab`` (what `make lab` runs) serves
a copy of the notebooks, Chromium opens notebook 01 in JupyterLab, runs all cells from the Run
menu (restarting the kernel) and saves; every code cell ran, none shows an error, and the saved notebook records what
the papermill test expects. The copy gets the papermill test's small parameters injected the
way papermill injects them. A screenshot goes to ``test-output/lab/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from refarch.tutorial.lab import KERNEL_NAME
from refarch.tutorial.results import read_results
from tests.notebooks.expectations import EXPECTATIONS
from tests.support.browser import CHROMIUM_ARGS, chromium_path
from tests.support.paths import ROOT, TEST_OUTPUT
from tests.support.ports import free_port
from tests.support.waiting import eventually, wait_until

pytestmark = pytest.mark.slow

NOTEBOOK = "01_prototype_search"
OUTPUT = TEST_OUTPUT / "lab"
#: Milliseconds for the whole notebook to run (the model loads and embeds on 2 shared cores).
RUN_TIMEOUT = 300_000


def _prepare(copy: Path) -> Path:
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    shutil.copytree(ROOT / "notebooks", copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    path = copy / f"{NOTEBOOK}.ipynb"
    notebook = load_notebook_node(str(path))
    notebook = parameterize_notebook(notebook, EXPECTATIONS[NOTEBOOK].parameters)
    nbformat.write(notebook, str(path))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    work = tmp_path_factory.mktemp("lab")
    notebook = _prepare(work / "notebooks")
    config = work / "jupyter-config"
    # Every cell in the DOM (JupyterLab 4 renders only the visible ones by default).
    tracker = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    port = free_port()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = (OUTPUT / "lab.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "refarch.cli", "lab", "--port", str(port), "--notebooks",
         str(notebook.parent)],
        stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert f"kernel '{KERNEL_NAME}' registered" in lines[0], lines
        match = re.search(r"serving (\S+) at (http://127\.0\.0\.1:\d+/lab\?token=\S+)", lines[1])
        assert match and Path(match.group(1)) == notebook.parent, lines
        url = match.group(2)
        token = url.split("token=")[1]
        # The rest of its stdout goes to the log (a full pipe would stall the server).
        threading.Thread(target=lambda: shutil.copyfileobj(process.stdout, log), daemon=True).start()
        status = f"http://127.0.0.1:{port}/api/status?token={token}"

        def answers() -> bool:
            try:
                with urllib.request.urlopen(status, timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        assert wait_until(answers, 60), (OUTPUT / "lab.log").read_text()
        yield url, notebook, f"http://127.0.0.1:{port}/api/sessions?token={token}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _kernel_idle(sessions_url: str) -> bool:
    with urllib.request.urlopen(sessions_url, timeout=5) as response:
        sessions = json.load(response)
    return any(s["path"].endswith(f"{NOTEBOOK}.ipynb") and s["kernel"]["execution_state"] == "idle"
               for s in sessions)


def test_notebook_01_runs_in_jupyterlab_in_a_browser(lab: tuple[str, Path, str]) -> None:
    from playwright.sync_api import sync_playwright

    url, notebook, sessions_url = lab
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(120_000)
            page.goto(url.replace("/lab?", f"/lab/tree/{notebook.name}?"))
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            # The kernel started and connected (the server says so, and so does the status bar).
            assert wait_until(lambda: _kernel_idle(sessions_url), 120)
            page.get_by_text(re.compile(r"\| Idle$")).wait_for()
            # Restart and run all, as a person does to run a notebook top to bottom: a plain
            # "Run All Cells" while the new kernel is still connecting asks to select a kernel.
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel and Run All Cells")).click()
            page.locator(".jp-Dialog .jp-mod-accept").click()  # "Restart"
            try:
                page.locator(".jp-OutputArea-output").filter(has_text="coffee_hit:").wait_for(
                    timeout=RUN_TIMEOUT)
            except Exception:
                page.screenshot(path=str(OUTPUT / f"failure-{NOTEBOOK}.png"), full_page=True)
                raise
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
            page.screenshot(path=str(OUTPUT / f"{NOTEBOOK}.png"))
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            assert prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts), prompts
            # Offline: no prompt about fetching news (refarch.tutorial.lab.OFFLINE_SETTINGS).
            assert page.get_by_text("Would you like to get notified").count() == 0
            errors = page.locator("[data-mime-type='application/vnd.jupyter.error']")
            assert errors.count() == 0, errors.all_inner_texts()
            page.keyboard.press("Control+s")

            def saved() -> dict:
                try:
                    return read_results(notebook)
                except LookupError as exc:
                    raise AssertionError(str(exc)) from None

            results = eventually(saved, 30)
        finally:
            browser.close()
    EXPECTATIONS[NOTEBOOK].check(results)
