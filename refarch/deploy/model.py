"""What an offline plan holds: the resources the program declared, and queries over them.

:class:`Plan` is what :func:`refarch.deploy.plan.build_plan` returns and what everything else
reads: :mod:`refarch.deploy.topology` finds who is wired to whom, :mod:`refarch.deploy.rules`
checks it, :mod:`refarch.deploy.diagram` draws it. This module imports none of them (they all
import it), and it renders only what needs nothing but the resources: the tree and a summary.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from refarch.deploy.mocks import unwrap_all

if TYPE_CHECKING:
    from infra.config import StackConfig

#: Properties shown next to each resource in the tree, by type.
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    "aws:ec2/route:Route": ("destinationCidrBlock",),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "fromPort", "toPort", "cidrIpv4", "description"),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ("ipProtocol", "cidrIpv4"),
    "aws:rds/instance:Instance": (
        "engine", "engineVersion", "instanceClass", "publiclyAccessible", "storageEncrypted",
        "backupRetentionPeriod", "deletionProtection", "multiAz"),
    "aws:sqs/queue:Queue": ("name", "fifoQueue", "sqsManagedSseEnabled",
                            "visibilityTimeoutSeconds"),
    "pinecone:index/index:Index": ("name", "dimension", "metric"),
    "aws:ecs/taskDefinition:TaskDefinition": ("family", "cpu", "memory"),
    "aws:ecs/service:Service": ("name", "desiredCount", "launchType"),
    "aws:lb/loadBalancer:LoadBalancer": ("name", "internal"),
    "aws:lb/listener:Listener": ("port", "protocol"),
    "aws:lb/targetGroup:TargetGroup": ("port", "targetType"),
    "aws:appautoscaling/target:Target": ("resourceId", "minCapacity", "maxCapacity"),
    "aws:appautoscaling/policy:Policy": ("policyType",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", "metricName", "threshold"),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
    "aws:ecr/repository:Repository": ("name",),
    "aws:ecs/cluster:Cluster": ("name",),
    "aws:scheduler/schedule:Schedule": ("scheduleExpression",),
    "aws:acm/certificate:Certificate": ("domainName", "validationMethod"),
    "aws:cognito/userPool:UserPool": ("name",),
    "aws:secretsmanager/secret:Secret": ("recoveryWindowInDays",),
}

@dataclass(frozen=True)
class PlannedResource:
    """One resource the program declares."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]

    @property
    def plain(self) -> dict[str, Any]:
        """The inputs with Pulumi's secret markers removed."""
        return unwrap_all(self.inputs)

    @property
    def short_type(self) -> str:
        """``aws:ec2/vpc:Vpc`` -> ``aws.ec2.Vpc``; ``refarch:infra:Network`` -> ``Network``."""
        if self.type.startswith("refarch:infra:"):
            return self.type.rsplit(":", 1)[-1]
        package, module, kind = (self.type.split(":") + ["", ""])[:3]
        return ".".join(p for p in (package, module.split("/")[0], kind) if p and p != "index")

    def key_properties(self) -> dict[str, Any]:
        """The few inputs worth showing for this type (plus, for listeners, the actions in
        order, and for task definitions, the variables injected from secrets)."""
        plain = self.plain
        shown = {k: plain[k] for k in KEY_PROPERTIES.get(self.type, ()) if k in plain}
        if self.type == "aws:lb/listener:Listener":
            actions = sorted(plain.get("defaultActions") or [], key=lambda a: a.get("order") or 0)
            shown["actions"] = ",".join(str(a.get("type")) for a in actions)
        elif self.type == "aws:ecs/taskDefinition:TaskDefinition":
            raw = plain.get("containerDefinitions", "[]")
            containers = json.loads(raw) if isinstance(raw, str) else (raw or [])
            names = sorted({s["name"] for c in containers for s in c.get("secrets") or []})
            shown["secrets"] = ",".join(names) or "none"
        return shown

    def references(self) -> set[str]:
        """Identifiers this resource can be referred to by (id, ARN, URL, name)."""
        refs = {self.id} if self.id else set()
        for key in ("arn", "url", "name", "repositoryUrl", "dashboardArn"):
            value = self.outputs.get(key)
            if isinstance(value, str) and value:
                refs.add(value)
        return refs


@dataclass(frozen=True)
class Plan:
    """Everything one offline run of the program declared."""

    config: StackConfig
    resources: tuple[PlannedResource, ...]
    outputs: dict[str, Any] = field(default_factory=dict)
    #: What each component registered with ``register_outputs``, by URN.
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- queries ------------------------------------------------------------------------------

    def of_type(self, type_: str) -> list[PlannedResource]:
        """Resources of one type token (ordered by parent, type, name)."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> PlannedResource:
        """The single resource of ``type_``; LookupError if there are none or several."""
        found = self.of_type(type_)
        if len(found) != 1:
            raise LookupError(f"expected one {type_}, the plan has {len(found)}")
        return found[0]

    def by_reference(self, value: Any) -> PlannedResource | None:
        """The resource whose id, ARN, URL or name is ``value`` (None if none is)."""
        if not isinstance(value, str) or not value:
            return None
        for resource in self.resources:
            if value in resource.references():
                return resource
        return None

    def children(self, urn: str) -> list[PlannedResource]:
        """Resources whose parent is ``urn`` ("" for the top level)."""
        return [r for r in self.resources if r.parent == urn]

    def components(self) -> list[PlannedResource]:
        """refarch's own ComponentResources."""
        return [r for r in self.resources if r.type.startswith("refarch:infra:")]

    def cloud_resources(self) -> list[PlannedResource]:
        """Resources a cloud provider would create (not components, not providers)."""
        return [r for r in self.resources
                if r.custom and not r.type.startswith("pulumi:providers:")]

    def counts_by_type(self) -> dict[str, int]:
        """Cloud resources per short type, most common first."""
        counts = Counter(r.short_type for r in self.cloud_resources())
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    # -- rendering ------------------------------------------------------------------------------

    def tree(self) -> str:
        """The resource tree as indented text: ``type name  key=value ...`` per line."""
        lines: list[str] = [f"stack {self.config.prefix} ({len(self.cloud_resources())} "
                            f"cloud resources in {len(self.components())} components)"]

        def walk(urn: str, depth: int) -> None:
            for resource in self.children(urn):
                props = " ".join(f"{k}={_short(v)}" for k, v in resource.key_properties().items())
                lines.append(f"{'  ' * depth}{resource.short_type} {resource.name}"
                             + (f"  {props}" if props else ""))
                walk(resource.urn, depth + 1)

        walk("", 1)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary: resources (type, name, parent, key properties), outputs."""
        return {
            "stack": self.config.prefix,
            "resources": [
                {"type": r.type, "name": r.name, "parent": r.parent, "urn": r.urn,
                 "properties": r.key_properties()}
                for r in self.resources
            ],
            "counts_by_type": self.counts_by_type(),
            "outputs": self.outputs,
        }

    def __iter__(self) -> Iterator[PlannedResource]:
        return iter(self.resources)


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Pulumi's wire format makes every number a float
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 48 else text[:45] + "..."

