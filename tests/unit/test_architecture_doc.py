"""docs/architecture.md is the project's map: it names every package and module of refarch, and
every path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def _named_paths() -> set[str]:
    return set(re.findall(r"`((?:refarch|tests|app|infra|notebooks|bench|docs)/[\w./]*)`", DOC.read_text()))


def _covered(path: str, named: set[str]) -> bool:
    """A module is covered when the doc names it or, for a package's inner modules, the
    package's folder (the index server's internals are described as a whole)."""
    return any(path == n or (n.endswith("/") and path.startswith(n)) for n in named)


def test_every_refarch_module_is_on_the_map() -> None:
    named = _named_paths()
    modules = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "refarch").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts
    )
    packages = sorted(
        p.parent.relative_to(ROOT).as_posix() + "/"
        for p in (ROOT / "refarch").rglob("__init__.py")
        if p.parent != ROOT / "refarch"
    )
    assert len(modules) > 40
    missing = [m for m in modules if not _covered(m, named) and not _named_in_package_row(m)]
    assert not missing, f"docs/architecture.md does not name: {missing}"
    missing_packages = [p for p in packages if p not in named and not _covered(p, named)]
    assert not missing_packages, f"docs/architecture.md does not name the packages: {missing_packages}"


def _named_in_package_row(module: str) -> bool:
    """``refarch/pipeline/relay.py`` is named when the row of ``refarch/pipeline/`` mentions
    ``relay``, its file name without ``.py``, as a word."""
    package, _, name = module.rpartition("/")
    stem = name.removesuffix(".py")
    for line in DOC.read_text().splitlines():
        if line.startswith(f"| `{package}/`") and re.search(rf"\b{re.escape(stem)}\b", line):
            return True
    return False


def test_every_path_the_map_names_exists() -> None:
    named = _named_paths()
    assert len(named) > 30
    missing = sorted(n for n in named if not (ROOT / n.rstrip("/")).exists()
                     and not (ROOT / n.split("::")[0]).exists())
    # Test ids like tests/.../test_x.py::test_y are checked by their file.
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
