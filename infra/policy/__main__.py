"""The CrossGuard policy pack: refarch's rules, enforced by ``pulumi preview`` and ``up``.

A thin adapter, and the only module that imports ``pulumi_policy``: every rule of
:mod:`refarch.deploy.rules` becomes a ``StackValidationPolicy`` (mandatory or advisory, as the
rule says for a real deploy) whose validation is :func:`refarch.deploy.policy.evaluate`.
There is one definition of each rule; the offline plan and the tests run the same functions.
"""

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/policy: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from refarch.deploy import policy, rules

LEVELS = {rules.MANDATORY: EnforcementLevel.MANDATORY, rules.ADVISORY: EnforcementLevel.ADVISORY}


def stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    """One rule as a stack validation policy."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        outcome = policy.evaluate(rule, args.resources, policy.pack_config())
        if outcome.not_applicable:
            args.not_applicable(outcome.not_applicable)
            return
        for message in outcome.messages:
            report_violation(message, None)

    return StackValidationPolicy(name=rule.name, description=rule.description,
                                 validate=validate, enforcement_level=LEVELS[rule.enforced_level])


def main() -> None:
    """Serve the pack to the engine (the SDK's gRPC server; never returns)."""
    PolicyPack(name=policy.PACK_NAME, policies=[stack_policy(r) for r in rules.RULES],
               enforcement_level=EnforcementLevel.MANDATORY)


if __name__ == "__main__":
    main()
