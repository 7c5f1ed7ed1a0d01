"""The README documents every setting, and CI runs exactly the README's test command."""

from __future__ import annotations

import re

from tests.support.paths import ROOT


def _settings_variables() -> set[str]:
    source = (ROOT / "refarch" / "settings.py").read_text(encoding="utf-8")
    from_env = source.split("def from_env", 1)[1].split("def with_", 1)[0]
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', from_env))


def test_every_environment_variable_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    variables = _settings_variables()
    assert len(variables) > 20
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert not missing, f"README's configuration table lacks: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^make test\b", readme, re.MULTILINE)
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith("set ")
        and not line.startswith("cd ")
    ]
    assert commands == ["make test"]
