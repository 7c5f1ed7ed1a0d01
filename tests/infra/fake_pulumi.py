"""A stand-in for the Pulumi CLI, the one boundary of the driver that cannot exist here.

:class:`FakePulumi` is a real :class:`pulumi.automation.PulumiCommand` subclass: the
Automation API calls its ``run`` exactly as it would call the CLI. It records every call,
keeps stacks, config and outputs in memory, answers with the CLI's JSON shapes, streams canned
engine events back over the event channel the SDK opened (gRPC for CLI versions after 3.205,
the event-log file before), and checks that the inline program's language server is reachable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from pulumi.automation import CommandResult, PulumiCommand
from pulumi.automation.errors import create_command_error
from pulumi.runtime.proto import events_pb2, events_pb2_grpc
from semver import VersionInfo

NOT_LOGGED_IN = ("error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI "
                 "sessions")


@dataclass
class Call:
    """One CLI invocation."""

    args: list[str]
    cwd: str
    env: dict[str, str]

    @property
    def verb(self) -> str:
        """The sub-command without flags, e.g. ``stack select`` or ``up``."""
        words = [a for a in self.args if not a.startswith("-")]
        if not words:
            return ""
        sub = {"stack": {"select", "init", "rm", "output", "history", "ls"},
               "config": {"set-all", "rm-all", "set", "get", "rm", "refresh"},
               "plugin": {"install", "ls", "rm"}}.get(words[0], set())
        return f"{words[0]} {words[1]}" if len(words) > 1 and words[1] in sub else words[0]


@dataclass
class FakeStack:
    config: dict[str, tuple[str, bool]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


class FakePulumi(PulumiCommand):
    """Records CLI calls and plays the CLI's part for the operations the driver uses."""

    def __init__(
        self,
        version: str = "3.272.0",
        *,
        logged_in: bool = True,
        resources: list[tuple[str, str]] | None = None,
        outputs: dict[str, Any] | None = None,
        fail: dict[str, str] | None = None,
        policy_findings: list[tuple[str, str, str]] | None = None,
    ) -> None:
        # No super().__init__: it would look for a real `pulumi` on PATH.
        self.command = "pulumi"
        self.version = VersionInfo.parse(version)
        self.logged_in = logged_in
        self.resources = resources or [("aws:ec2/vpc:Vpc", "network-vpc")]
        self.canned_outputs = outputs or {}
        self.fail = fail or {}
        #: (policy name, enforcement level, message) the policy pack reports, when one is given.
        self.policy_findings = policy_findings or []
        self.calls: list[Call] = []
        self.stacks: dict[str, FakeStack] = {}
        self.plugins: list[tuple[str, ...]] = []
        self.events_sent: dict[str, int] = {}
        self.inline_program_reachable: dict[str, bool] = {}

    # -- helpers ------------------------------------------------------------------------------

    def _ok(self, stdout: str = "", on_output: Any = None) -> CommandResult:
        if on_output:
            for line in stdout.splitlines():
                on_output(line)
        return CommandResult(stdout=stdout, stderr="", code=0)

    def _error(self, stderr: str) -> None:
        raise create_command_error(CommandResult(stdout="", stderr=stderr, code=255))

    def _stack(self, args: list[str]) -> FakeStack:
        name = _flag(args, "--stack")
        if name not in self.stacks:
            self._error(f"error: no stack named '{name}' found")
        return self.stacks[name]

    def calls_to(self, verb: str) -> list[Call]:
        """The recorded calls of one sub-command (``up``, ``config set-all``, ...)."""
        return [c for c in self.calls if c.verb == verb]

    # -- the CLI --------------------------------------------------------------------------------

    def run(self, args, cwd, additional_env, on_output=None, on_error=None, **_: Any):
        args = [a for a in args if a != "--non-interactive"]
        call = Call(list(args), cwd, dict(additional_env))
        self.calls.append(call)
        verb = call.verb
        if verb in self.fail:
            self._error(self.fail[verb])
        if verb == "whoami" or verb.startswith("stack") or verb.startswith("config"):
            if not self.logged_in:
                self._error(NOT_LOGGED_IN)
        if verb == "whoami":
            return self._ok(json.dumps({"user": "tester", "url": "file:///state",
                                        "organizations": []}))
        if verb == "stack select":
            self._stack(args)
            return self._ok()
        if verb == "stack init":
            name = [a for a in args if not a.startswith("-")][2]
            if name in self.stacks:
                self._error(f"error: stack '{name}' already exists")
            self.stacks[name] = FakeStack()
            return self._ok(f"Created stack '{name}'")
        if verb == "stack rm":
            name = [a for a in args if not a.startswith("-")][2]
            self.stacks.pop(name, None)
            return self._ok()
        if verb == "config" and "--json" in args:
            stack = self._stack(args)
            return self._ok(json.dumps({k: {"value": v, "secret": s}
                                        for k, (v, s) in stack.config.items()}))
        if verb == "config set-all":
            stack = self._stack(args)
            for i, arg in enumerate(args):
                if arg in ("--plaintext", "--secret"):
                    key, value = args[i + 1].split("=", 1)
                    stack.config[key] = (value, arg == "--secret")
            return self._ok()
        if verb == "config rm-all":
            stack = self._stack(args)
            for key in [a for a in args[2:] if not a.startswith("-") and a in stack.config]:
                del stack.config[key]
            return self._ok()
        if verb == "plugin install":
            words = [a for a in args if not a.startswith("-")]
            self.plugins.append(tuple(words[3:5]) + ((_flag(args, "--server"),)
                                                     if "--server" in args else ()))
            return self._ok()
        if verb == "stack output":
            stack = self._stack(args)
            shown = stack.outputs if "--show-secrets" in args else {
                k: v for k, v in stack.outputs.items()}
            return self._ok(json.dumps(shown))
        if verb == "stack history":
            stack = self._stack(args)
            return self._ok(json.dumps(list(reversed(stack.history))[:1]))
        if verb in ("preview", "up", "refresh", "destroy"):
            return self._operation(verb, args, on_output)
        self._error(f"error: the fake CLI does not implement {args}")
        raise AssertionError("unreachable")

    def _operation(self, verb: str, args: list[str], on_output: Any) -> CommandResult:
        stack = self._stack(args)
        client = _flag(args, "--client")
        if client:
            channel = grpc.insecure_channel(client)
            try:
                grpc.channel_ready_future(channel).result(timeout=10)
                self.inline_program_reachable[verb] = True
            except grpc.FutureTimeoutError:
                self.inline_program_reachable[verb] = False
            finally:
                channel.close()
        op = {"preview": "create", "up": "create", "refresh": "refresh", "destroy": "delete"}[verb]
        events = [{"preludeEvent": {"config": {}}}]
        for type_, name in self.resources:
            urn = f"urn:pulumi:{_flag(args, '--stack')}::refarch::{type_}::{name}"
            meta = {"op": op, "urn": urn, "type": type_, "provider": ""}
            events.append({"resourcePreEvent": {"metadata": meta, "planning": verb == "preview"}})
            events.append({"resOutputsEvent": {"metadata": meta, "planning": verb == "preview"}})
        packs = [args[i + 1] for i, a in enumerate(args) if a == "--policy-pack"]
        refused = []
        if packs:
            for policy, level, message in self.policy_findings:
                events.append({"policyEvent": {
                    "message": message, "color": "never", "policyName": policy,
                    "policyPackName": "refarch-guardrails", "policyPackVersion": "0.1.0",
                    "policyPackVersionTag": "0.1.0", "enforcementLevel": level}})
                if level == "mandatory":
                    refused.append(f"    - [mandatory]  {policy}\n      {message}")
        events.append({"diagnosticEvent": {"message": f"fake {verb} finished", "color": "never",
                                           "severity": "warning"}})
        changes = {op: len(self.resources)}
        events.append({"summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1,
                                        "resourceChanges": changes, "PolicyPacks": {}}})
        for n, item in enumerate(events):
            item.update(sequence=n, timestamp=int(datetime.now(UTC).timestamp()))
        target = _flag(args, "--event-log")
        if target and target.startswith("tcp://"):
            channel = grpc.insecure_channel(target[len("tcp://"):])
            stub = events_pb2_grpc.EventsStub(channel)
            stub.StreamEvents(iter([events_pb2.EventRequest(event=json.dumps(e))
                                    for e in events]))
            channel.close()
        elif target:
            with open(target, "a", encoding="utf-8") as log:
                for item in events + [{"cancelEvent": {}, "sequence": len(events)}]:
                    log.write(json.dumps(item) + "\n")
        self.events_sent[verb] = len(events)
        if refused:
            # What the CLI prints when a mandatory policy fails: the run stops, nothing changes.
            raise create_command_error(CommandResult(
                stdout="Policies:\n    ❌ refarch-guardrails@v0.1.0 (local: policy)\n"
                       + "\n".join(refused),
                stderr=f"error: {verb} failed: policy violations", code=255))
        if verb == "up":
            stack.outputs = dict(self.canned_outputs)
        if verb == "destroy":
            stack.outputs = {}
        if verb != "preview":
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            stack.history.append({"kind": verb, "startTime": now, "endTime": now, "message": "",
                                  "environment": {}, "config": {}, "result": "succeeded",
                                  "resourceChanges": changes})
        return self._ok(f"{verb}: {len(self.resources)} resources", on_output)


def flags_of(call: Call) -> set[str]:
    """The ``--flag`` names of a call."""
    return {re.split("=", a, maxsplit=1)[0] for a in call.args if a.startswith("--")}
