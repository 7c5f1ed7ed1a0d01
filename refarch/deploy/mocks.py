"""Pulumi mocks that record every resource the program declares, for the plan and the tests.

Under :func:`pulumi.runtime.set_mocks` nothing reaches AWS, Pinecone or a Pulumi CLI: each
resource registration calls :meth:`RecordingMocks.new_resource`, which keeps the resource's
type, name and inputs and answers with plausible outputs (ARNs, URLs, host names) so that the
program's wiring resolves exactly as it would for real. A :class:`RecordingMonitor` adds what
the mocks are not told: each resource's URN and its parent.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

ACCOUNT_ID = "123456789012"

#: Pulumi's marker for a secret value in deserialized inputs (``{SIG: SECRET_SIG, "value": x}``).
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class RecordedResource:
    """One registration seen by the mocks."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str
    custom: bool
    urn: str = ""
    parent: str = ""


@dataclass
class Recording:
    """Everything one program run registered, in registration order."""

    resources: list[RecordedResource] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, resource: RecordedResource) -> None:
        with self._lock:
            self.resources.append(resource)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def is_secret(value: Any) -> bool:
    """Whether a deserialized input is a Pulumi secret."""
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def unwrap(value: Any) -> Any:
    """Strip Pulumi's secret markers, recursively, leaving the plain values."""
    if is_secret(value):
        return unwrap(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def unwrap_all(values: Mapping[str, Any]) -> dict[str, Any]:
    """A property map (inputs, outputs) with the secret markers of its values stripped."""
    return {key: unwrap(value) for key, value in values.items()}


class RecordingMocks(Mocks):
    """Mocks that record registrations and return realistic outputs for refarch's resources."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.recording = Recording()

    # -- outputs ---------------------------------------------------------------------------

    def _outputs(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        plain = unwrap(inputs)
        region, account = self.region, ACCOUNT_ID
        suffix = _short_hash(f"{typ}/{name}")
        physical = plain.get("name") or f"{name}-{suffix}"
        resource_id = f"{name}-{suffix}"
        service = typ.split(":")[1].split("/")[0] if typ.count(":") >= 2 else "pulumi"
        out: dict[str, Any] = dict(inputs)
        out.setdefault("name", physical)
        out["arn"] = f"arn:aws:{service}:{region}:{account}:{typ.rsplit(':', 1)[-1].lower()}/{physical}"

        if typ == "aws:sqs/queue:Queue":
            out["url"] = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
            out["arn"] = f"arn:aws:sqs:{region}:{account}:{physical}"
            resource_id = out["url"]
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            out["dnsName"] = f"{physical}-{suffix}.{region}.elb.amazonaws.com"
            out["arnSuffix"] = f"app/{physical}/{suffix}"
            out["arn"] = (f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/"
                          f"{physical}/{suffix}")
        elif typ == "aws:lb/targetGroup:TargetGroup":
            out["arnSuffix"] = f"targetgroup/{physical}/{suffix}"
            out["arn"] = f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{physical}/{suffix}"
        elif typ == "aws:rds/instance:Instance":
            identifier = plain.get("identifier") or physical
            out["identifier"] = identifier
            out["address"] = f"{identifier}.{suffix}.{region}.rds.amazonaws.com"
            out["port"] = int(plain.get("port", 5432))
            out["endpoint"] = f"{out['address']}:{out['port']}"
            out["arn"] = f"arn:aws:rds:{region}:{account}:db:{identifier}"
        elif typ == "aws:rds/subnetGroup:SubnetGroup":
            resource_id = physical
        elif typ == "aws:ecr/repository:Repository":
            out["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}"
            out["registryId"] = account
        elif typ == "aws:ecs/cluster:Cluster":
            out["arn"] = f"arn:aws:ecs:{region}:{account}:cluster/{physical}"
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = plain.get("family", physical)
            out["revision"] = 1
            out["arn"] = f"arn:aws:ecs:{region}:{account}:task-definition/{family}:1"
            resource_id = family
        elif typ == "aws:ecs/service:Service":
            out["arn"] = f"arn:aws:ecs:{region}:{account}:service/{physical}"
        elif typ == "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{account}:role/{physical}"
            resource_id = physical
        elif typ == "aws:secretsmanager/secret:Secret":
            out["arn"] = f"arn:aws:secretsmanager:{region}:{account}:secret:{physical}-{suffix[:6]}"
            resource_id = out["arn"]
        elif typ == "aws:sns/topic:Topic":
            out["arn"] = f"arn:aws:sns:{region}:{account}:{physical}"
            resource_id = out["arn"]
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{physical}"
            resource_id = physical
        elif typ == "aws:cloudwatch/dashboard:Dashboard":
            out["dashboardArn"] = f"arn:aws:cloudwatch::{account}:dashboard/{plain.get('dashboardName')}"
        elif typ == "aws:appautoscaling/target:Target":
            resource_id = plain.get("resourceId", resource_id)
        elif typ == "random:index/randomPassword:RandomPassword":
            length = int(plain.get("length", 16))
            out["result"] = ("MockPw" + suffix * 8)[:length]
        elif typ == "pinecone:index/index:Index":
            out["host"] = f"{physical}-{suffix}.svc.{region}.pinecone.io"
            out["status"] = {"ready": True, "state": "Ready"}
        elif typ == "aws:acm/certificate:Certificate":
            domain = plain.get("domainName", "example.com")
            out["arn"] = f"arn:aws:acm:{region}:{account}:certificate/{suffix}"
            out["domainValidationOptions"] = [{
                "domainName": domain, "resourceRecordName": f"_{suffix}.{domain}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{suffix}.acm-validations.aws."}]
        elif typ == "aws:acm/certificateValidation:CertificateValidation":
            out["certificateArn"] = plain.get("certificateArn")
        elif typ == "aws:route53/record:Record":
            out["fqdn"] = str(plain.get("name", "")).rstrip(".")
        elif typ == "aws:cognito/userPool:UserPool":
            resource_id = f"{region}_{suffix}"
            out["arn"] = f"arn:aws:cognito-idp:{region}:{account}:userpool/{resource_id}"
            out["id"] = resource_id
        elif typ == "aws:cognito/userPoolClient:UserPoolClient":
            resource_id = f"client{suffix}"
        elif typ == "aws:scheduler/schedule:Schedule":
            out["arn"] = f"arn:aws:scheduler:{region}:{account}:schedule/default/{physical}"
        elif typ == "random:index/randomString:RandomString":
            out["result"] = suffix[: int(plain.get("length", 6))]
        elif typ == "docker-build:index:Image":
            tag = (plain.get("tags") or [f"{name}:latest"])[0]
            digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
            out["digest"] = digest
            out["ref"] = f"{tag.rsplit(':', 1)[0]}@{digest}"
        return resource_id, out

    # -- Mocks interface ---------------------------------------------------------------------

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = self._outputs(args.typ, args.name, args.inputs)
        if not args.custom and not args.typ.startswith("pulumi:providers:"):
            resource_id, outputs = "", {}  # component resources have no id or state
        self.recording.add(
            RecordedResource(
                type=args.typ,
                name=args.name,
                inputs=dict(args.inputs),
                outputs=outputs,
                id=resource_id,
                custom=bool(args.custom) or args.typ.startswith("pulumi:providers:"),
            )
        )
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        # (result, check failures): the monitor iterates the failures, so "none" is [].
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {
                "names": [f"{self.region}{c}" for c in letters],
                "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
                "state": "available",
            }, []
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "mock-ecr-token",
                "authorizationToken": "QVdTOm1vY2s=",
                "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com",
                "expiresAt": "2099-01-01T00:00:00Z",
            }, []
        raise NotImplementedError(f"no mock for the invoke {args.token}")


class RecordingMonitor(MockMonitor):
    """A mock monitor that also records each resource's URN and parent URN."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording_mocks = mocks
        self.registrations: dict[tuple[str, str], tuple[str, str]] = {}
        #: What each component passed to ``register_outputs``, by URN.
        self.component_outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            with self._lock:
                self.registrations[(request.type, request.name)] = (response.urn, request.parent)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        from pulumi.runtime import rpc
        from pulumi.runtime.sync_await import _ensure_event_loop

        _ensure_event_loop()
        outputs = rpc.deserialize_properties(request.outputs)
        with self._lock:
            self.component_outputs[request.urn] = dict(outputs)
        return super().RegisterResourceOutputs(request)

    def finish(self) -> list[RecordedResource]:
        """Attach URNs and parents to the recorded resources and return them."""
        resources = self.recording_mocks.recording.resources
        for resource in resources:
            urn, parent = self.registrations.get((resource.type, resource.name), ("", ""))
            resource.urn = urn
            # Children of the root stack are top level: no parent.
            resource.parent = "" if "::pulumi:pulumi:Stack::" in parent else parent
        return resources
