"""refarch's modules import each other without a circle, and refarch.deploy's import downward only.

The import graph is read from the source with :mod:`ast`, every import counted: at the top, under
``TYPE_CHECKING`` and inside functions. A lazy import hides a circle from the interpreter, not
from a reader, so it counts too (``plan -> diagram -> topology -> plan`` was such a circle).
tests/integration/test_fresh_imports.py then imports each deploy module first in a fresh
interpreter, the way a notebook or a test would.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.layers import DEPLOY_LAYERS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "refarch"



def _modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``module`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import name``: name may be a submodule.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in map(resolve, targets) if t and t != module)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of the package it imports."""
    modules = _modules(package)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (``[a, b, ..., a]``), or None when the graph has none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return path[path.index(target):] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def layer_violations(graph: dict[str, set[str]], package: str, layers: list[str]) -> list[str]:
    """Imports inside ``package`` that go to a module of the same or a higher layer."""
    rank = {f"{package}.{name}": i for i, name in enumerate(layers)}
    return [f"{module} imports {target}"
            for module in sorted(rank) for target in sorted(graph.get(module, ()))
            if target in rank and rank[target] >= rank[module]]


def test_refarch_has_no_import_circle() -> None:
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_every_deploy_module_has_a_layer() -> None:
    graph = import_graph(PACKAGE)
    deploy = {name.rpartition(".")[2] for name in graph if name.startswith("refarch.deploy.")}
    assert deploy == set(DEPLOY_LAYERS), "place new deploy modules in DEPLOY_LAYERS"


def test_deploy_modules_import_only_lower_ones() -> None:
    assert layer_violations(import_graph(PACKAGE), "refarch.deploy", DEPLOY_LAYERS) == []


def test_the_checks_see_a_circle_hidden_in_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    # The shape of the old deploy circle: plan -> diagram (lazily) -> topology -> plan (typing).
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plan.py").write_text("def mermaid():\n    from pkg.diagram import draw\n")
    (package / "diagram.py").write_text("from pkg import topology as t\n")
    (package / "topology.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .plan import Plan\n")
    graph = import_graph(package)
    assert find_cycle(graph) == ["pkg.diagram", "pkg.topology", "pkg.plan", "pkg.diagram"]
    assert layer_violations(graph, "pkg", ["topology", "diagram", "plan"]) == [
        "pkg.topology imports pkg.plan"]
