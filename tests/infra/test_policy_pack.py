"""The CrossGuard policy pack runs the same rule functions as the offline plan.

``pulumi_policy`` cannot be installed beside refarch (it pins protobuf ~=5.29, onnx needs
>= 6.31), so ``infra/policy/__main__.py`` is loaded here with a small stand-in for the parts of
the SDK it uses (``PolicyPack``, ``StackValidationPolicy``, ``EnforcementLevel``), and the
engine's resources are the offline plan's, handed over the way the SDK hands them: one plain
property map per resource, wrapped in a proxy that refuses to read unknown values.
"""

from __future__ import annotations

import dataclasses
import enum
import runpy
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from refarch.deploy import policy, rules
from refarch.deploy import topology as t
from refarch.deploy.mocks import unwrap_all
from refarch.deploy.plan import Plan
from refarch.deploy.program import INFRA_DIR

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
#: The real reader (the pack fixture replaces it while the pack is loaded).
PACK_CONFIG = policy.pack_config


class _Unknown(Exception):
    pass


class _DictProxy(Mapping):
    """Like pulumi_policy.proxy._DictProxy: reading an unknown value raises."""

    def __init__(self, target: dict[str, Any]) -> None:
        self._target = {k: _proxy(v) for k, v in target.items()}

    def __getitem__(self, key: str) -> Any:
        if key == "__target":
            return self._target
        value = self._target[key]
        if isinstance(value, str) and value in policy.UNKNOWN_VALUES:
            raise _Unknown(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


class _ListProxy(Sequence):
    def __init__(self, target: list[Any]) -> None:
        self._target = [_proxy(v) for v in target]

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return self._target
        return self._target[key]

    def __len__(self) -> int:
        return len(self._target)


def _proxy(value: Any) -> Any:
    if isinstance(value, dict):
        return _DictProxy(value)
    if isinstance(value, list):
        return _ListProxy(value)
    return value


@dataclass
class _Resource:
    """The shape of pulumi_policy.PolicyResource the bridge reads."""

    resource_type: str
    props: Any
    urn: str
    name: str
    parent: Any = None


def _engine_resources(plan: Plan) -> list[_Resource]:
    """What the engine sends: every resource's state (inputs and outputs, plain) in a proxy."""
    by_urn: dict[str, _Resource] = {}
    for r in plan.resources:
        # The state: the outputs, where the inputs the program gave win (as after an update).
        props = {**unwrap_all(r.outputs), **unwrap_all(r.inputs)}
        if r.id:
            props["id"] = r.id
        by_urn[r.urn] = _Resource(r.type, _proxy(props), r.urn, r.name)
    for r in plan.resources:
        by_urn[r.urn].parent = by_urn.get(r.parent)
    return list(by_urn.values())


# --- a stand-in for the pulumi_policy SDK ---------------------------------------------------------


class EnforcementLevel(enum.Enum):
    ADVISORY = "advisory"
    MANDATORY = "mandatory"


@dataclass
class _Args:
    resources: list[Any]
    reason: list[str] = field(default_factory=list)

    def not_applicable(self, reason: str | None = None) -> None:
        self.reason.append(reason or "")


class StackValidationPolicy:
    def __init__(self, name: str, description: str, validate: Any,
                 enforcement_level: EnforcementLevel) -> None:
        self.name, self.description = name, description
        self.validate, self.enforcement_level = validate, enforcement_level


PACKS: list[Any] = []


class PolicyPack:
    def __init__(self, name: str, policies: list[Any], enforcement_level: Any) -> None:
        PACKS.append(self)
        self.name, self.policies, self.enforcement_level = name, policies, enforcement_level


@pytest.fixture(scope="module")
def pack(configured_plan: Plan) -> PolicyPack:
    sdk = types.ModuleType("pulumi_policy")
    for name, value in {"EnforcementLevel": EnforcementLevel, "PolicyPack": PolicyPack,
                        "StackValidationPolicy": StackValidationPolicy,
                        "StackValidationArgs": _Args, "ReportViolation": object}.items():
        setattr(sdk, name, value)
    saved = sys.modules.get("pulumi_policy")
    sys.modules["pulumi_policy"] = sdk
    original = policy.pack_config
    # The engine gives the pack the stack's config; here, the configured plan's.
    policy.pack_config = lambda *a, **k: configured_plan.config  # type: ignore[assignment]
    try:
        PACKS.clear()
        runpy.run_path(str(INFRA_DIR / "policy" / "__main__.py"), run_name="__main__")
        yield PACKS[0]
    finally:
        policy.pack_config = original  # type: ignore[assignment]
        if saved is None:
            sys.modules.pop("pulumi_policy", None)
        else:
            sys.modules["pulumi_policy"] = saved


def _run(pack: PolicyPack, name: str, resources: list[Any]) -> tuple[list[str], list[str]]:
    found = next(p for p in pack.policies if p.name == name)
    messages: list[str] = []
    args = _Args(resources)
    found.validate(args, lambda message, urn=None: messages.append(message))
    return messages, args.reason


def test_every_rule_is_a_policy_of_the_pack_at_its_level(pack: PolicyPack) -> None:
    assert pack.name == policy.PACK_NAME == "refarch-guardrails"
    assert [p.name for p in pack.policies] == [r.name for r in rules.RULES]
    for p, r in zip(pack.policies, rules.RULES, strict=True):
        assert p.description == r.description
        assert p.enforcement_level.value == r.enforced_level


def test_the_pack_passes_the_real_program(pack: PolicyPack, configured_plan: Plan) -> None:
    resources = _engine_resources(configured_plan)
    for r in rules.RULES:
        messages, reason = _run(pack, r.name, resources)
        assert messages == [], r.name
        assert bool(reason) == r.offline_only, (r.name, reason)


@pytest.mark.parametrize("rule_name", ["https-with-sign-in", "master-secret-only-in-migration-task",
                                       "data-protected-unless-disposable", "database-private"])
def test_a_broken_stack_fails_the_same_rule_with_the_same_message(
        pack: PolicyPack, configured_plan: Plan, rule_name: str) -> None:
    from tests.infra.test_rules import MUTATIONS

    mutation = next(m for name, m in MUTATIONS if name == rule_name)
    broken = mutation(configured_plan)
    expected = rules.get(rule_name).check(broken)
    messages, reason = _run(pack, rule_name, _engine_resources(broken))
    assert messages == expected and expected and reason == []


def _unknown(value: Any, known: set[str]) -> Any:
    if isinstance(value, str):
        return UNKNOWN_STRING if value in known else value
    if isinstance(value, dict):
        return {k: _unknown(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown(v, known) for v in value]
    return value


def test_findings_on_unknown_values_are_not_applicable(pack: PolicyPack,
                                                       configured_plan: Plan) -> None:
    # A first preview: no security group exists yet, so every group id (and every reference
    # to one) is unknown, and the ingress rules cannot tell the groups apart.
    ids = {sg.id for sg in configured_plan.of_type(t.SG)}
    resources = tuple(dataclasses.replace(r, id=UNKNOWN_STRING if r.id in ids else r.id,
                                          inputs=_unknown(r.inputs, ids),
                                          outputs=_unknown(r.outputs, ids))
                      for r in configured_plan.resources)
    preview = dataclasses.replace(configured_plan, resources=resources)
    assert rules.get("public-ingress-only-to-alb").check(preview)  # would be a finding
    messages, reason = _run(pack, "public-ingress-only-to-alb", _engine_resources(preview))
    assert messages == [] and "unknown until the resources exist" in reason[0]
    # A rule that holds anyway still passes outright, unknowns or not.
    assert _run(pack, "database-private", _engine_resources(preview)) == ([], [])


def test_raw_sees_through_the_proxies() -> None:
    wrapped = _proxy({"a": [1, {"b": UNKNOWN_STRING}], "c": "x"})
    with pytest.raises(_Unknown):
        wrapped["a"][1]["b"]
    assert policy.raw(wrapped) == {"a": [1, {"b": UNKNOWN_STRING}], "c": "x"}
    assert policy.has_unknowns(policy.raw(wrapped))


def test_pack_config_reads_the_stack_config_like_the_program() -> None:
    values = {"domainName": "search.example.org", "appMaxTasks": "6"}
    config = PACK_CONFIG(values.get, {"region": "eu-west-1"}.get, stack="prod")
    assert (config.stack, config.aws_region, config.app_max_tasks) == ("prod", "eu-west-1", 6)
    assert config.domain_name == "search.example.org"


def test_the_pack_has_its_own_requirements_and_refarch_does_not_need_pulumi_policy() -> None:
    requirements = (INFRA_DIR / "policy" / "requirements.txt").read_text()
    assert "pulumi-policy==1.21.0" in requirements
    project = (INFRA_DIR.parent / "pyproject.toml").read_text()
    assert "pulumi-policy" not in project and "pulumi_policy" not in project
    # Only the pack's adapter imports the SDK.
    for path in [*(INFRA_DIR.parent / "refarch").rglob("*.py"), *INFRA_DIR.glob("*.py")]:
        assert "import pulumi_policy" not in path.read_text() and (
            "from pulumi_policy" not in path.read_text()), path
