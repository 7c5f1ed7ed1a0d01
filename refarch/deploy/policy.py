"""The bridge from CrossGuard to the rules: the engine's resources become a :class:`Plan`.

``infra/policy/__main__.py`` is the policy pack: a thin adapter that imports ``pulumi_policy``
and turns every rule of :mod:`refarch.deploy.rules` into a stack validation policy whose
``validate`` calls :func:`evaluate` here. This module never imports ``pulumi_policy`` (it pins
an older protobuf than refarch's own dependencies), so the tests run it with stand-ins for the
SDK's ``PolicyResource``: anything with ``resource_type``, ``props``, ``urn``, ``name`` and
``parent``.

What the pack sees differs from the offline plan in two ways, both handled here:

* *Unknown values.* During a preview, values the cloud has not assigned yet (ids, ARNs of
  resources to be created) are unknown. A rule that finds problems on a plan with unknowns is
  reported *not applicable* with the reason, not as a violation: its findings may only be
  unknowns it could not resolve. The driver runs the full check offline first (every value is
  known under mocks), and every later preview sees the real values.
* *Secrets.* The engine hands the pack plain values, without Pulumi's secret markers, so the
  rules that judge secretness (``offline_only``) run offline only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from refarch.deploy.model import Plan, PlannedResource

if TYPE_CHECKING:
    from infra.config import StackConfig
    from refarch.deploy.rules import Rule

#: The pack's name (``infra/policy/PulumiPolicy.yaml`` and the engine's reports use it).
PACK_NAME = "refarch-guardrails"

#: The engine's sentinels for values unknown during a preview (pulumi_policy.proxy).
UNKNOWN_VALUES = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


@dataclass(frozen=True)
class Outcome:
    """What one rule says about the stack the engine sent."""

    messages: list[str] = field(default_factory=list)
    #: Set when the rule could not judge this stack (why, for the engine's report).
    not_applicable: str | None = None


def raw(value: Any) -> Any:
    """``value`` with pulumi_policy's unknown-checking proxies removed (plain dicts/lists).

    The proxies raise on reading an unknown value; their ``["__target"]`` is the wrapped
    container, read directly here so unknowns stay visible as their sentinel strings.
    """
    if isinstance(value, (str, bytes)) or value is None:
        return value
    if isinstance(value, Mapping):
        target = _target(value)
        items = target.items() if isinstance(target, dict) else (
            (k, value[k]) for k in value)
        return {k: raw(v) for k, v in items}
    if isinstance(value, Sequence):
        target = _target(value)
        elements = target if isinstance(target, list) else list(value)
        return [raw(v) for v in elements]
    return value


def _target(proxy: Any) -> Any:
    try:
        return proxy["__target"]
    except (KeyError, TypeError, IndexError):
        return None


def has_unknowns(value: Any) -> bool:
    """Whether a (raw) value holds an unknown sentinel anywhere."""
    if isinstance(value, str):
        return value in UNKNOWN_VALUES
    if isinstance(value, dict):
        return any(has_unknowns(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknowns(v) for v in value)
    return False


def _is_custom(type_: str) -> bool:
    return not (type_.startswith("refarch:infra:") or type_ == "pulumi:pulumi:Stack")


def plan_from_resources(resources: Iterable[Any], config: StackConfig) -> Plan:
    """A :class:`Plan` of the engine's resources (``PolicyResource``-like objects).

    The engine gives one property map per resource (the outputs, which include the inputs);
    it serves as both. A resource's id is read from its ``id`` property (the bridged AWS
    provider's outputs carry it; a resource without one gets none, and a rule that needed it
    reports a finding). The root stack is left out, as the offline plan has none.
    """
    planned = []
    for resource in resources:
        type_ = str(resource.resource_type)
        if type_ == "pulumi:pulumi:Stack":
            continue
        props = raw(resource.props) or {}
        parent = getattr(resource, "parent", None)
        parent_urn = getattr(parent, "urn", "") if parent is not None else ""
        if "::pulumi:pulumi:Stack::" in parent_urn:
            parent_urn = ""
        planned.append(PlannedResource(
            type=type_, name=str(resource.name), urn=str(resource.urn), parent=parent_urn,
            custom=_is_custom(type_), id=str(props.get("id") or ""), inputs=props,
            outputs=props,
        ))
    planned.sort(key=lambda r: (r.parent, r.type, r.name))
    return Plan(config=config, resources=tuple(planned))


def evaluate(rule: Rule, resources: Iterable[Any], config: StackConfig) -> Outcome:
    """Run one rule on the engine's resources, as the policy pack does."""
    if rule.offline_only:
        return Outcome(not_applicable="judges Pulumi's secret markers, which policy packs do "
                       "not see; `refarch deploy plan` and the driver check it offline")
    plan = plan_from_resources(resources, config)
    messages = rule.check(plan)
    if messages and any(has_unknowns(r.inputs) for r in plan):
        return Outcome(not_applicable=(
            f"values unknown until the resources exist ({len(messages)} finding(s) may be "
            "unresolved references); checked offline by `refarch deploy plan` before every "
            "deploy, and again by the next preview"))
    return Outcome(messages=messages)


def pack_config(get_refarch: Callable[[str], str | None] | None = None,
                get_aws: Callable[[str], str | None] | None = None,
                stack: str | None = None) -> StackConfig:
    """The stack's :class:`StackConfig` inside the pack, read from the stack's Pulumi config
    (the engine passes it to the pack's process) exactly as ``infra/__main__.py`` reads it."""
    from refarch.deploy.program import load_infra

    config_module = load_infra("config")
    if get_refarch is None or get_aws is None:
        import pulumi

        get_refarch = get_refarch or pulumi.Config(config_module.NAMESPACE).get
        get_aws = get_aws or pulumi.Config("aws").get
    if stack is None:
        stack = os.environ.get("PULUMI_STACK") or "dev"
    config: StackConfig = config_module.StackConfig.from_values(
        get_refarch, stack=stack,
        aws_region=get_aws("region") or config_module.StackConfig.aws_region)
    return config
