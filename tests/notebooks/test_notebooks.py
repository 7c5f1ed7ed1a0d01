"""Every notebook in notebooks/ runs top to bottom under papermill and records checked results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refarch.tutorial.results import read_results
from tests.notebooks.expectations import EXPECTATIONS
from tests.support.paths import ROOT, TEST_OUTPUT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {index} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {index} was executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_is_tagged_parameters(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code_cells, f"{path.name} has no code"
    assert "parameters" in code_cells[0].get("metadata", {}).get("tags", []), (
        f"{path.name}: the first code cell must be tagged 'parameters'"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_records_results(path: Path, tmp_path: Path) -> None:
    import papermill

    expectation = EXPECTATIONS.get(path.stem)
    assert expectation is not None, f"tests/notebooks/expectations.py has no entry for {path.stem}"
    output = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(output),
        parameters=expectation.parameters,
        kernel_name="python3",
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        log_output=False,
    )
    results = read_results(output)
    expectation.check(results)
    # Keep the executed notebook for people to look at.
    keep = TEST_OUTPUT / "notebooks"
    keep.mkdir(parents=True, exist_ok=True)
    (keep / path.name).write_bytes(output.read_bytes())
