"""The offline plan: run the Pulumi program under mocks and record what it would create.

No AWS account, Pinecone key or Pulumi CLI is needed: :func:`build_plan` runs
:func:`infra.program.build_stack` under :func:`pulumi.runtime.set_mocks`, records every
resource (type, name, parent, inputs) and resolves the stack outputs with placeholder values.
The :class:`~refarch.deploy.model.Plan` it returns renders the resource tree; the Mermaid
diagram of the architecture (:func:`refarch.deploy.diagram.mermaid`) is derived from the
recorded resources and their wiring (not drawn by hand). The infra tests and the rules in
:mod:`refarch.deploy.rules` check it.

Modules import downward only: ``mocks`` <- ``model`` <- ``topology`` <- ``diagram``, ``rules``;
``plan`` (this runner) needs ``model``, ``mocks`` and ``program``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from refarch.deploy.mocks import RecordingMocks, RecordingMonitor, unwrap_all
from refarch.deploy.model import Plan, PlannedResource
from refarch.deploy.program import load_infra
from refarch.errors import DeployError

if TYPE_CHECKING:
    from infra.config import StackConfig

__all__ = ["OFFLINE_API_KEY", "Plan", "PlannedResource", "build_plan"]

#: Placeholder Pinecone key for offline runs (visible in nothing but the mock secret).
OFFLINE_API_KEY = "offline-plan-placeholder-key"
#: Placeholder OIDC client secret for offline runs with ``authProvider=oidc``.
OFFLINE_OIDC_SECRET = "offline-plan-placeholder-oidc-secret"

# Runs under mocks share Pulumi's process-wide runtime settings: one at a time.
_RUN_LOCK = threading.Lock()


def build_plan(config: StackConfig | None = None, pinecone_api_key: str = OFFLINE_API_KEY) -> Plan:
    """Run the program offline under Pulumi mocks and return what it declared.

    ``config`` defaults to the default :class:`~infra.config.StackConfig`.
    """
    import pulumi

    program = load_infra("program")
    if config is None:
        config = load_infra("config").StackConfig()

    with _RUN_LOCK:
        mocks = RecordingMocks(region=config.aws_region)
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project="refarch", stack=config.stack, preview=False,
                                 monitor=monitor)
        resolved: dict[str, Any] = {}

        @pulumi.runtime.test
        def run() -> Any:
            outputs = program.build_stack(config, pulumi.Output.secret(pinecone_api_key),
                                          pulumi.Output.secret(OFFLINE_OIDC_SECRET))
            values = {name: getattr(outputs, name) for name in program.OUTPUT_NAMES
                      if getattr(outputs, name) is not None}
            return pulumi.Output.all(**values).apply(resolved.update)

        try:
            run()
        except Exception as exc:  # a bug in the program: say so plainly
            raise DeployError(f"the Pulumi program failed offline: {exc}") from exc
        recorded = monitor.finish()

    # Registration order depends on how Outputs resolve; sort for stable plans and diagrams.
    resources = tuple(
        PlannedResource(type=r.type, name=r.name, urn=r.urn, parent=r.parent, custom=r.custom,
                        id=r.id, inputs=r.inputs, outputs=r.outputs)
        for r in sorted(recorded, key=lambda r: (r.parent, r.type, r.name))
    )
    return Plan(config=config, resources=resources, outputs=unwrap_all(resolved),
                component_outputs={urn: unwrap_all(v)
                                   for urn, v in monitor.component_outputs.items()})
