"""The offline plan lists what the program declares; the diagram follows the real wiring."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest

from refarch.cli import main
from refarch.deploy import rules
from refarch.deploy import topology as t
from refarch.deploy.diagram import mermaid
from refarch.deploy.plan import Plan
from refarch.deploy.program import load_infra


class _Collect(pulumi.runtime.Mocks):
    """The simplest possible mocks: remember (type, name) and echo the inputs back."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.seen.append((args.typ, args.name))
        return f"{args.name}-id", {**args.inputs, "arn": f"arn:{args.name}", "url": args.name,
                                   "repositoryUrl": f"r/{args.name}", "dnsName": args.name,
                                   "name": args.inputs.get("name", args.name)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {"names": ["za", "zb", "zc"], "userName": "u", "password": "p"}


def test_plan_lists_exactly_what_the_program_declares(default_plan: Plan) -> None:
    collect = _Collect()
    pulumi.runtime.set_mocks(collect, project="refarch", stack="dev", preview=False)

    @pulumi.runtime.test
    def run() -> Any:
        outputs = load_infra("program").build_stack(load_infra("config").StackConfig(),
                                                    pulumi.Output.secret("k"))
        return outputs.app_url.apply(lambda url: None)

    run()
    planned = sorted((r.type, r.name) for r in default_plan.resources)
    assert len(planned) > 80
    assert planned == sorted(collect.seen)


def test_tree_shows_every_resource_under_its_component(default_plan: Plan) -> None:
    tree = default_plan.tree()
    lines = tree.splitlines()
    assert lines[0].startswith("stack refarch-dev (")
    for resource in default_plan.resources:
        assert f"{resource.short_type} {resource.name}" in tree
    # Children are indented under their component.
    network = next(i for i, line in enumerate(lines) if line.strip() == "Network network")
    vpc = next(i for i, line in enumerate(lines) if "aws.ec2.Vpc network-vpc" in line)
    assert vpc > network
    assert lines[vpc].index("aws") > lines[network].index("Network")
    assert "instanceClass=db.t4g.micro" in tree and "publiclyAccessible=false" in tree
    assert "dimension=384" in tree


def test_counts_and_json(default_plan: Plan) -> None:
    counts = default_plan.counts_by_type()
    assert counts["aws.ec2.SecurityGroup"] == 6  # alb, app, relay, indexer, database, tasks
    assert counts["aws.ecs.Service"] == 3
    assert sum(counts.values()) == len(default_plan.cloud_resources())
    payload = default_plan.to_dict()
    assert len(payload["resources"]) == len(default_plan.resources)
    json.dumps(payload)  # JSON-able


def test_diagram_is_derived_from_the_wiring(default_plan: Plan) -> None:
    diagram = mermaid(default_plan)
    assert diagram.startswith("flowchart LR")
    for edge in ('internet -->|":80 from 0.0.0.0/0"| alb',
                 'internet -->|":443 from 0.0.0.0/0"| alb', 'alb -->|":8501"| app',
                 'app -->|":5432"| db', 'relay -->|":5432"| db', 'relay -->|"send"| queue',
                 'queue -->|"receive"| indexer', 'queue -->|"after 5 receives"| dlq',
                 'indexer -->|"query / upsert"| index', 'dlq -.->|"depth > 0"| alarms',
                 'scaling -.->|"backlog per task"| indexer',
                 # issue 13: sign-in before the app, the scheduled repair, the master URL's
                 # only holders
                 'alb -.->|":443 sign-in first"| signin',
                 'scheduler -->|"reconcile --repair, rate(1 hour)"| reconcile',
                 'migrate -.->|"master URL"| db', 'reconcile -.->|"master URL"| db'):
        assert edge in diagram
    assert 'indexer -->|":5432"| db' in diagram
    assert "Pinecone products (384-d cosine)" in diagram


def test_diagram_changes_with_the_resources(default_plan: Plan, plan_with: Any) -> None:
    assert 'indexer -->|":5432"| db' not in mermaid(plan_with(indexer_reads_database=False))
    # Drop the redrive policy: the queue -> DLQ arrow goes with it.
    resources = []
    for r in default_plan.resources:
        if r.type == t.QUEUE and r.plain.get("redrivePolicy"):
            r = dataclasses.replace(r, inputs={k: v for k, v in r.inputs.items()
                                               if k != "redrivePolicy"})
        resources.append(r)
    broken = dataclasses.replace(default_plan, resources=tuple(resources))
    assert "receives" not in mermaid(broken)


def test_cli_plan_prints_tree_diagram_and_rules(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    diagram = tmp_path / "arch.mmd"
    assert main(["deploy", "plan", "--stack", "demo", "--mermaid", str(diagram)]) == 0
    out = capsys.readouterr().out
    assert "stack refarch-demo (" in out
    assert "```mermaid" in out and "flowchart LR" in out
    assert f"rules: {len(rules.RULES)} checked, 0 violated, 7 warnings" in out
    # The policy results: the HTTPS + sign-in rule passes, the placeholder domain warns.
    assert "pass    mandatory https-with-sign-in" in out
    assert "warn    advisory  unsafe-opt-outs-reported" in out
    assert "- WARNING unsafe-opt-outs-reported: domainName is not set" in out
    # The Dockerfile's placeholder pins: a warning here, a refusal on up.
    assert ("- WARNING image-pins-filled-in: base image python:3.11-slim-bookworm has a "
            "placeholder digest: fill in the real one (refuses `refarch deploy up`)") in out
    # Issue 13's "done when": an HTTPS listener that authenticates, the master URL only in the
    # migration (and repair) task, the scheduled reconcile.
    assert ("aws.lb.Listener services-edge-https  port=443 protocol=HTTPS "
            "actions=authenticate-cognito,forward") in out
    assert "aws.lb.Listener services-edge-http  port=80 protocol=HTTP actions=redirect" in out
    assert "pass    mandatory master-secret-only-in-migration-task" in out
    for role in ("app", "relay", "indexer"):
        line = next(x for x in out.splitlines() if f"TaskDefinition services-{role} " in x)
        secrets = set(line.split("secrets=")[1].split(","))
        assert "DATABASE_URL" not in secrets and f"REFARCH_{role.upper()}_DATABASE_URL" in secrets
    assert "aws.scheduler.Schedule repair-reconcile  scheduleExpression=rate(1 hour)" in out
    assert "pass    mandatory scheduled-repair" in out
    assert diagram.read_text().startswith("flowchart LR")


def test_cli_plan_warns_about_unsafe_opt_outs(capsys: pytest.CaptureFixture[str]) -> None:
    # A workshop opt-out is allowed (exit 0) but reported loudly.
    assert main(["deploy", "plan", "--set", "unsafeNoSignIn=true"]) == 0
    out = capsys.readouterr().out
    assert "WARNING unsafe-opt-outs-reported: unsafeNoSignIn=true" in out


def test_cli_plan_json_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "plan", "--json", "--set", "azCount=3"]) == 0
    payload = json.loads(capsys.readouterr().out)
    subnets = [r for r in payload["resources"] if r["type"] == t.SUBNET]
    assert len(subnets) == 6
    assert payload["rules"]["violations"] == []
    assert len(payload["rules"]["warnings"]) == 7
    statuses = {r["rule"]: r["status"] for r in payload["rules"]["results"]}
    assert statuses["https-with-sign-in"] == "pass"
    assert statuses["unsafe-opt-outs-reported"] == "warn"
    assert payload["outputs"]["app_url"] == "https://refarch.example.com"


def test_cli_plan_rejects_unknown_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "plan", "--set", "azCont=3"]) == 2
    assert "unknown stack setting 'azCont'" in capsys.readouterr().err


@pytest.mark.slow
def test_plan_runs_from_anywhere_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PINECONE_", "PULUMI_", "REFARCH_"))}
    env.update(HOME=str(tmp_path), PATH="/usr/bin:/bin", AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run(
        [sys.executable, "-m", "refarch.cli", "deploy", "plan"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"rules: {len(rules.RULES)} checked, 0 violated" in result.stdout
    assert not (tmp_path / ".refarch").exists()  # the plan writes nothing
