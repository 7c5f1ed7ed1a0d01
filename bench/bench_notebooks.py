"""How long each notebook takes to run top to bottom with its own defaults (what an attendee
runs), for the workshop agenda (docs/workshop.md).

Each notebook runs with papermill in a fresh kernel, in order, each in its own throwaway
REFARCH_HOME (so nothing one leaves behind speeds up the next), with the machine's load average
before and after, since other processes change every figure. Reading time is not measured:
docs/workshop.md adds it per stage.

    .venv/bin/python bench/bench_notebooks.py [--only 01,04]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from refarch.logs import format_event

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    """Run the notebooks one by one and print the seconds each took."""
    import papermill

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated notebook prefixes (01,04)")
    args = parser.parse_args()
    wanted = [p for p in args.only.split(",") if p]
    notebooks = sorted((ROOT / "notebooks").glob("0*.ipynb"))
    if wanted:
        notebooks = [n for n in notebooks if any(n.name.startswith(p) for p in wanted)]
    total = 0.0
    for notebook in notebooks:
        with tempfile.TemporaryDirectory(prefix="refarch-nb-") as tmp:
            os.environ["REFARCH_HOME"] = str(Path(tmp) / "home")
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            papermill.execute_notebook(str(notebook), str(Path(tmp) / notebook.name),
                                       kernel_name="python3", cwd=str(ROOT / "notebooks"),
                                       progress_bar=False)
            seconds = time.perf_counter() - started
            total += seconds
            print(format_event("notebook_run", notebook=notebook.stem, seconds=round(seconds, 1),
                               load_before=round(load_before, 2),
                               load_after=round(os.getloadavg()[0], 2)), flush=True)
    print(format_event("notebooks_total", notebooks=len(notebooks), seconds=round(total, 1)))


if __name__ == "__main__":
    main()
