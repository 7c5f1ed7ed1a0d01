"""Run refarch's policy pack in the real ``pulumi_policy`` SDK, as the engine would, offline.

    python -m venv /tmp/packvenv && /tmp/packvenv/bin/pip install -r infra/policy/requirements.txt
    /tmp/packvenv/bin/python scripts/check_policy_pack.py RESOURCES.json CONFIG.json

RESOURCES.json is a list of ``{"type", "name", "urn", "parent", "props"}`` (what
``tests/infra/test_policy_pack_sdk.py`` writes from an offline plan); CONFIG.json the stack's
Pulumi config (``{"refarch:domainName": ...}``), handed to the pack through ``PULUMI_CONFIG``
as the engine does. Prints one JSON object: violations (policy, level, message) and the
policies reported not applicable. Must run in the pack's environment (pulumi-policy pins an
older protobuf than refarch's own).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(resources_path: str, config_path: str) -> int:
    """Analyze the resources with every policy of the pack; print the result as JSON."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.policy import EnforcementLevel, _PolicyAnalyzerServicer

    os.environ["PULUMI_CONFIG"] = Path(config_path).read_text(encoding="utf-8")
    os.environ.setdefault("PULUMI_STACK", "dev")
    pack = runpy.run_path(str(ROOT / "infra" / "policy" / "__main__.py"), run_name="pack")
    from refarch.deploy import policy, rules

    policies = [pack["stack_policy"](r) for r in rules.RULES]
    servicer = _PolicyAnalyzerServicer(policy.PACK_NAME, "0.1.0", policies,
                                       EnforcementLevel.MANDATORY)
    resources = []
    for r in json.loads(Path(resources_path).read_text(encoding="utf-8")):
        props = struct_pb2.Struct()
        props.update(r["props"])
        resources.append(analyzer_pb2.AnalyzerResource(
            type=r["type"], properties=props, urn=r["urn"], name=r["name"], parent=r["parent"]))
    response = servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), None)
    levels = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory"}
    print(json.dumps({
        "policies": [p.name for p in policies],
        "violations": [{"policy": d.policyName, "level": levels.get(d.enforcementLevel, "?"),
                        "message": d.message} for d in response.diagnostics],
        "not_applicable": {n.policy_name: n.reason for n in response.not_applicable},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
