"""How a notebook records its results so that tests (and readers) can check them.

The last cell of every notebook calls :func:`record` with the figures it produced. They are
shown as a table to the reader and stored in the executed notebook under a dedicated MIME type,
which :func:`read_results` finds again after papermill has run the notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIME_TYPE = "application/vnd.refarch.results+json"


def record(**results: Any) -> dict[str, Any]:
    """Display ``results`` and store them in the notebook's output (values must be JSON-able)."""
    from IPython.display import display

    payload: dict[str, Any] = json.loads(json.dumps(results, default=str))
    lines = "\n".join(f"{key}: {value}" for key, value in payload.items())
    display({MIME_TYPE: payload, "text/plain": lines}, raw=True)
    return payload


def read_results(notebook_path: str | Path) -> dict[str, Any]:
    """Return the results a notebook recorded with :func:`record` (the last call wins).

    Raises ``LookupError`` when the executed notebook recorded nothing.
    """
    import nbformat

    notebook = nbformat.read(str(notebook_path), as_version=4)
    found: dict[str, Any] | None = None
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME_TYPE in data:
                found = dict(data[MIME_TYPE])
    if found is None:
        raise LookupError(f"{notebook_path} recorded no results (no call to record())")
    return found
