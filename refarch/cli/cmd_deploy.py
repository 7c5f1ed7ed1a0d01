"""``refarch deploy plan|preview|up|refresh|destroy|outputs|migrate|add-user|psql``: the AWS
stack, via Pulumi, and operator access to it.

``plan`` needs nothing but this repository: it runs the Pulumi program offline under mocks and
prints the resource tree, a Mermaid diagram and the rule checks. The other verbs drive the real
stack through the Automation API and need the Pulumi CLI, AWS credentials and (for preview and
up) ``PINECONE_API_KEY``; each says how to fix what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from refarch.cli.args import Handler, Subparsers
from refarch.errors import DeployError
from refarch.settings import Settings

if TYPE_CHECKING:
    from refarch.deploy.driver import Deployer, OperationResult


def _settings_pairs(pairs: list[str] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DeployError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set appMaxTasks=6")
        found[key.strip()] = value.strip()
    return found


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    from refarch.deploy import rules
    from refarch.deploy.diagram import mermaid
    from refarch.deploy.plan import build_plan
    from refarch.deploy.program import stack_config

    config = stack_config(settings, args.stack, overrides=_settings_pairs(args.set))
    plan = build_plan(config)
    results = rules.results(plan)
    violations = [v for result in results for v in result.violations]
    refused = rules.mandatory(violations)
    diagram = mermaid(plan)
    if args.json:
        payload = plan.to_dict()
        payload["mermaid"] = diagram
        payload["rules"] = {"checked": len(rules.RULES),
                            "violations": [str(v) for v in refused],
                            "warnings": [str(v) for v in violations if not v.mandatory],
                            "results": [r.to_dict() for r in results]}
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(plan.tree())
        print()
        print("```mermaid")
        print(diagram)
        print("```")
        print()
        print("outputs (placeholder values until `refarch deploy up`):")
        for name, value in plan.outputs.items():
            print(f"  {name}: {json.dumps(value) if not isinstance(value, str) else value}")
        print()
        print("policy pack infra/policy (the same rules run in `pulumi preview` and `up`):")
        for result in results:
            print(f"  {result.status:<7} {result.rule.level:<9} {result.rule.name}"
                  + ("  (offline only)" if result.rule.offline_only else ""))
            for violation in result.violations:
                print(f"            - {violation.message}")
        print()
        warnings = len(violations) - len(refused)
        print(f"rules: {len(rules.RULES)} checked, {len(refused)} violated, "
              f"{warnings} warning{'s' if warnings != 1 else ''}")
        for violation in violations:
            note = " (refuses `refarch deploy up`)" if (
                violation.refuses_deploy and not violation.mandatory) else ""
            print(f"  - {'WARNING ' if not violation.mandatory else ''}{violation}{note}")
    if args.mermaid:
        with open(args.mermaid, "w", encoding="utf-8") as out:
            out.write(diagram + "\n")
    return 1 if refused else 0


def _deployer(args: argparse.Namespace, settings: Settings) -> Deployer:
    from refarch.deploy.driver import Deployer

    return Deployer(settings, stack=args.stack, overrides=_settings_pairs(getattr(args, "set", None)),
                    write=lambda line: print(line, flush=True))


def _print_result(result: OperationResult) -> None:
    changes = ", ".join(f"{op} {n}" for op, n in sorted(result.changes.items())) or "no changes"
    print(f"{result.operation}: {changes} in {result.seconds:.0f} s")
    for name, value in result.outputs.items():
        print(f"  {name}: {value}")


def _preview(args: argparse.Namespace, settings: Settings) -> int:
    _print_result(_deployer(args, settings).preview())
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    _print_result(_deployer(args, settings).up())
    return 0


def _refresh(args: argparse.Namespace, settings: Settings) -> int:
    _print_result(_deployer(args, settings).refresh())
    return 0


def _destroy(args: argparse.Namespace, settings: Settings) -> int:
    stack = args.stack or settings.deploy_stack
    if not args.yes:
        if not sys.stdin.isatty():
            raise DeployError(f"destroy deletes every resource of the stack {stack!r}, the "
                              "database included: pass --yes to confirm")
        answer = input(f"Type the stack name ({stack}) to delete all its resources: ")
        if answer.strip() != stack:
            print("refarch deploy destroy: not confirmed, nothing deleted", file=sys.stderr)
            return 1
    _print_result(_deployer(args, settings).destroy(remove_stack=args.remove_stack))
    return 0


def _outputs(args: argparse.Namespace, settings: Settings) -> int:
    outputs = _deployer(args, settings).outputs()
    if args.json:
        print(json.dumps(outputs, indent=2, default=str))
    elif not outputs:
        print("no outputs: the stack has not been deployed (refarch deploy up)")
    else:
        for name, value in outputs.items():
            print(f"{name}: {value}")
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    task = _deployer(args, settings).migrate()
    print(f"migrate: done ({task})")
    return 0


def _add_user(args: argparse.Namespace, settings: Settings) -> int:
    pool = _deployer(args, settings).add_user(args.email)
    print(f"add-user: {args.email} added to {pool}; Cognito e-mails a temporary password, "
          "changed at the first sign-in")
    return 0


def _psql(args: argparse.Namespace, settings: Settings) -> int:
    import subprocess

    from refarch.deploy.operator import check_exec_tools

    command = _deployer(args, settings).psql_command(args.service)
    if args.print:
        print(" ".join(command))
        return 0
    check_exec_tools()
    return subprocess.call(command)


def register(subparsers: Subparsers) -> None:
    """Add the ``deploy`` sub-command and its verbs."""
    parser = subparsers.add_parser(
        "deploy",
        help="deploy to AWS with Pulumi (plan offline, preview, up, refresh, destroy, outputs)",
        description=(
            "The AWS stack: ECS Fargate services behind an ALB, RDS PostgreSQL, SQS FIFO with a "
            "dead-letter queue, a Pinecone serverless index. `plan` runs offline with no "
            "accounts; the other verbs use the Pulumi CLI, AWS credentials and "
            "PINECONE_API_KEY. See docs/deploy.md."
        ),
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(
        name: str, help_text: str, func: Handler, stack_settings: bool = True
    ) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--stack", help="Pulumi stack name (default: REFARCH_STACK, dev)")
        if stack_settings:
            sub.add_argument("--set", action="append", metavar="KEY=VALUE",
                             help="a stack setting, e.g. --set appMaxTasks=6 (repeatable; "
                                  "saved with the stack)")
        sub.set_defaults(func=func)
        return sub

    plan = verb("plan", "show the resources, architecture diagram and rule checks, offline",
                _plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument("--mermaid", metavar="PATH", help="also write the diagram to PATH")
    verb("preview", "show what `up` would change", _preview)
    verb("up", "create or update the stack (builds and pushes the image unless REFARCH_IMAGE_URI)",
         _up)
    verb("refresh", "bring the stack's state in line with the cloud", _refresh)
    destroy = verb("destroy", "delete every resource of the stack", _destroy, stack_settings=False)
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    destroy.add_argument("--remove-stack", action="store_true",
                         help="also remove the stack and its configuration")
    outputs = verb("outputs", "print the stack outputs (app URL, endpoints, dashboard)", _outputs,
                   stack_settings=False)
    outputs.add_argument("--json", action="store_true", help="print the outputs as JSON")
    verb("migrate", "run the migration task (up does after every update) and wait for it",
         _migrate, stack_settings=False)
    add_user = verb("add-user", "create a sign-in user in the stack's Cognito user pool",
                    _add_user, stack_settings=False)
    add_user.add_argument("email", help="the user's e-mail address (their user name)")
    psql = verb("psql", "open psql in a running service task (ECS Exec), as its own role",
                _psql, stack_settings=False)
    psql.add_argument("--service", default="app", choices=("app", "relay", "indexer"),
                      help="whose task and database role (default app)")
    psql.add_argument("--print", action="store_true",
                      help="print the aws ecs execute-command line instead of running it")
