"""The rule registry: what a rule is, its levels, and running rules on a plan.

:mod:`refarch.deploy.rules` (the base rules) and :mod:`refarch.deploy.safety_rules` (issue 13's)
register into :data:`RULES` with :func:`rule`; ``rules`` re-exports everything here, so callers
use ``rules.RULES``, ``rules.check`` and so on. Imports no Pulumi package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refarch.deploy.model import Plan

MANDATORY = "mandatory"
ADVISORY = "advisory"


@dataclass(frozen=True)
class Rule:
    """A named rule with what it guarantees and the function that checks it."""

    name: str
    description: str
    check: Callable[[Plan], list[str]]
    #: ``mandatory`` refuses a deploy; ``advisory`` warns.
    level: str = MANDATORY
    #: Needs Pulumi's secret markers (only the offline plan has them, not the policy pack).
    offline_only: bool = False
    #: The level on a real deploy (driver, policy pack), when stricter than the plan's: a
    #: placeholder for what cannot be known offline warns in the plan, refuses a deploy.
    deploy_level: str | None = None

    @property
    def enforced_level(self) -> str:
        """The level a real deploy (the driver's check, the policy pack) applies."""
        return self.deploy_level or self.level


@dataclass(frozen=True)
class Violation:
    """One broken rule, with what was found."""

    rule: str
    message: str
    level: str = MANDATORY
    #: Whether a real deploy refuses this (mandatory, or advisory offline but mandatory then).
    refuses_deploy: bool = True

    @property
    def mandatory(self) -> bool:
        """Whether this violation refuses a deploy (advisory ones are warnings)."""
        return self.level == MANDATORY

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


RULES: list[Rule] = []


def rule(name: str, description: str, *, level: str = MANDATORY, offline_only: bool = False,
         deploy_level: str | None = None) -> Callable[[Callable[[Plan], list[str]]], Callable]:
    """Register a rule function under ``name``."""

    def register(fn: Callable[[Plan], list[str]]) -> Callable[[Plan], list[str]]:
        RULES.append(Rule(name, description, fn, level, offline_only, deploy_level))
        return fn

    return register


def get(name: str) -> Rule:
    """The rule called ``name`` (KeyError naming it otherwise)."""
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(f"unknown rule: {name}")


def check(plan: Plan, names: list[str] | None = None) -> list[Violation]:
    """Run every rule (or the ``names`` given) and return all violations, warnings included."""
    selected = [r for r in RULES if names is None or r.name in names]
    unknown = set(names or []) - {r.name for r in RULES}
    if unknown:
        raise KeyError(f"unknown rules: {', '.join(sorted(unknown))}")
    return [_violation(r, message) for r in selected for message in r.check(plan)]


def _violation(r: Rule, message: str) -> Violation:
    return Violation(r.name, message, r.level, refuses_deploy=r.enforced_level == MANDATORY)


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome on a plan: ``pass``, ``fail`` (mandatory) or ``warn`` (advisory)."""

    rule: Rule
    violations: list[Violation]

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``warn``."""
        if not self.violations:
            return "pass"
        return "fail" if self.rule.level == MANDATORY else "warn"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: name, level, status, messages."""
        return {"rule": self.rule.name, "level": self.rule.level, "status": self.status,
                "offline_only": self.rule.offline_only,
                "messages": [v.message for v in self.violations]}


def results(plan: Plan) -> list[RuleResult]:
    """Every rule's result on ``plan``, in registration order (what the plan prints)."""
    return [RuleResult(r, [_violation(r, m) for m in r.check(plan)]) for r in RULES]


def mandatory(violations: list[Violation]) -> list[Violation]:
    """The violations that fail the offline plan."""
    return [v for v in violations if v.mandatory]


def refusing_deploy(violations: list[Violation]) -> list[Violation]:
    """The violations that refuse a real deploy (the mandatory ones and the placeholders)."""
    return [v for v in violations if v.refuses_deploy]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def role_url_variable(role: str) -> str:
    """``app`` -> ``REFARCH_APP_DATABASE_URL``: the variable a service's own URL arrives in."""
    return f"REFARCH_{role.upper()}_DATABASE_URL"
