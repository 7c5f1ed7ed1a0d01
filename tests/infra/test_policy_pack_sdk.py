"""The policy pack in the *real* pulumi_policy SDK (its analyzer servicer, as the engine calls
it), when a Python with the pack's requirements is given: ``REFARCH_POLICY_PYTHON=/path/to/venv/
bin/python`` (see scripts/check_policy_pack.py). refarch's own environment cannot import the SDK
(protobuf pins), so without it this module is skipped; test_policy_pack.py covers the adapter
with a stand-in either way."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from refarch.deploy import rules
from refarch.deploy.plan import Plan
from refarch.deploy.program import INFRA_DIR
from tests.infra.conftest import PINNED_IMAGE
from tests.infra.test_rules import MUTATIONS

PYTHON = os.environ.get("REFARCH_POLICY_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="REFARCH_POLICY_PYTHON is not set")
SCRIPT = INFRA_DIR.parent / "scripts" / "check_policy_pack.py"


def _analyze(plan: Plan, tmp_path: Path) -> dict[str, Any]:
    resources = []
    for r in plan.resources:
        props = {**r.outputs, **r.inputs}  # the state: outputs, the program's inputs winning
        if r.id:
            props["id"] = r.id
        resources.append({"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent,
                          "props": props})
    (tmp_path / "resources.json").write_text(json.dumps(resources, default=str))
    (tmp_path / "config.json").write_text(json.dumps({
        "refarch:domainName": "search.example.org", "refarch:alarmEmail": "ops@example.org",
        "refarch:imageUri": PINNED_IMAGE}))
    result = subprocess.run([str(PYTHON), str(SCRIPT), str(tmp_path / "resources.json"),
                             str(tmp_path / "config.json")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(INFRA_DIR.parent)})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_real_sdk_passes_the_program(configured_plan: Plan, tmp_path: Path) -> None:
    result = _analyze(configured_plan, tmp_path)
    assert result["policies"] == [r.name for r in rules.RULES]
    assert result["violations"] == []
    assert set(result["not_applicable"]) == {r.name for r in rules.RULES if r.offline_only}


def test_the_real_sdk_refuses_a_broken_stack_with_the_rules_message(
        configured_plan: Plan, tmp_path: Path) -> None:
    mutation = next(m for name, m in MUTATIONS if name == "https-with-sign-in")
    broken = mutation(configured_plan)
    (expected,) = rules.get("https-with-sign-in").check(broken)
    result = _analyze(broken, tmp_path)
    assert [(v["policy"], v["level"]) for v in result["violations"]] == [
        ("https-with-sign-in", "mandatory")]
    assert result["violations"][0]["message"].endswith("\n" + expected)
