"""The Pulumi program under Pulumi's mocks: structure, outputs, and what each setting changes."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest

from refarch.deploy import rules
from refarch.deploy import topology as t
from refarch.deploy.mocks import RecordingMocks, is_secret
from refarch.deploy.plan import Plan
from refarch.deploy.program import load_infra
from refarch.errors import ConfigError
from refarch.model_spec import DIMENSION

COMPONENT_FILES = ("network", "security", "database", "queue", "vector_index", "image",
                   "services", "edge", "autoscaling", "observability", "repair")


# --- run directly under the mocks, asserting on Outputs -----------------------------------------


@pulumi.runtime.test
def test_build_stack_returns_resolved_endpoints() -> Any:
    mocks = RecordingMocks(region="eu-west-1")
    pulumi.runtime.set_mocks(mocks, project="refarch", stack="unit", preview=False)
    config = load_infra("config").StackConfig(stack="unit", aws_region="eu-west-1")
    outputs = load_infra("program").build_stack(config, pulumi.Output.secret("pc-unit-key"))

    def check(values: list[Any]) -> None:
        app_url, db, queue_url, dlq_url, host, dashboard = values
        # HTTPS on the app's domain by default (the placeholder offline).
        assert app_url == "https://refarch.example.com"
        assert db.endswith(".eu-west-1.rds.amazonaws.com:5432")
        assert queue_url.endswith("/refarch-unit-changes.fifo")
        assert dlq_url.endswith("/refarch-unit-changes-dlq.fifo")
        assert host.endswith(".pinecone.io")
        assert "region=eu-west-1" in dashboard and "refarch-unit-pipeline" in dashboard
        # Registration happened through our mocks, with the region configured.
        provider = next(r for r in mocks.recording.resources if r.type == "pulumi:providers:aws")
        assert provider.inputs["region"] == "eu-west-1"

    return pulumi.Output.all(outputs.app_url, outputs.database_endpoint, outputs.queue_url,
                             outputs.dlq_url, outputs.index_host,
                             outputs.dashboard_url).apply(check)


@pulumi.runtime.test
def test_pinecone_key_reaches_the_stack_only_as_a_secret() -> Any:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="refarch", stack="unit", preview=False)
    config = load_infra("config").StackConfig(stack="unit")
    outputs = load_infra("program").build_stack(config, pulumi.Output.secret("pc-sentinel-key"))

    def check(_: Any) -> None:
        holders = [r for r in mocks.recording.resources
                   if "pc-sentinel-key" in json.dumps(r.inputs)]
        assert {r.type for r in holders} == {"pulumi:providers:pinecone",
                                            "aws:secretsmanager/secretVersion:SecretVersion"}
        for r in holders:
            wrapped = r.inputs.get("apiKey", r.inputs.get("secretString"))
            assert is_secret(wrapped) and wrapped["value"] == "pc-sentinel-key"

    return outputs.index_host.apply(check)


def test_the_cli_entry_point_reads_pulumi_config() -> None:
    # What `pulumi up` in infra/ runs: __main__.py reads Pulumi config and builds the stack.
    main = Path(load_infra("program").__file__).with_name("__main__.py")
    mocks = RecordingMocks(region="eu-west-1")
    pulumi.runtime.set_mocks(mocks, project="refarch", stack="cli", preview=False)
    pulumi.runtime.set_all_config(
        {"refarch:azCount": "3", "refarch:natGatewayCount": "3", "aws:region": "eu-west-1",
         "refarch:domainName": "search.example.org", "pinecone:apiKey": "pc-cli-key"},
        ["pinecone:apiKey"])

    @pulumi.runtime.test
    def run() -> None:
        runpy.run_path(str(main), run_name="__main__")

    try:
        run()
    finally:
        pulumi.runtime.set_all_config({}, [])
    by_type: dict[str, list[Any]] = {}
    for r in mocks.recording.resources:
        by_type.setdefault(r.type, []).append(r)
    assert len(by_type[t.SUBNET]) == 6 and len(by_type[t.NAT]) == 3
    assert by_type["pulumi:providers:aws"][0].inputs["region"] == "eu-west-1"
    key = by_type["pulumi:providers:pinecone"][0].inputs["apiKey"]
    assert is_secret(key) and key["value"] == "pc-cli-key"
    assert by_type[t.ALB][0].inputs["name"] == "refarch-cli-alb"
    assert by_type[t.CERTIFICATE][0].inputs["domainName"] == "search.example.org"


def test_the_cli_entry_point_refuses_the_placeholder_domain() -> None:
    main = Path(load_infra("program").__file__).with_name("__main__.py")
    pulumi.runtime.set_mocks(RecordingMocks(), project="refarch", stack="cli", preview=False)
    pulumi.runtime.set_all_config({"pinecone:apiKey": "pc-cli-key"}, ["pinecone:apiKey"])

    @pulumi.runtime.test
    def run() -> None:
        runpy.run_path(str(main), run_name="__main__")

    try:
        with pytest.raises(ConfigError, match="refarch:domainName"):
            run()
    finally:
        pulumi.runtime.set_all_config({}, [])


# --- structure -------------------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", COMPONENT_FILES)
def test_one_component_per_file_with_a_real_type_token(module_name: str) -> None:
    module = load_infra(module_name)
    components = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__]
    assert len(components) == 1, components
    source = inspect.getsource(components[0])
    assert f'"refarch:infra:{components[0].__name__}"' in source
    # Typed args: the constructor takes one frozen dataclass of arguments.
    args_type = inspect.signature(components[0].__init__).parameters["args"].annotation
    assert args_type.endswith("Args")
    assert getattr(module, args_type).__dataclass_params__.frozen


def test_every_resource_is_parented_to_its_component(default_plan: Plan) -> None:
    components = {c.urn: c for c in default_plan.components()}
    assert sorted(c.type.rsplit(":", 1)[-1] for c in components.values()) == sorted(
        ["Network", "SecurityGroups", "Database", "ChangeQueue", "VectorIndex", "ServiceImage",
         "Services", "Edge", "Autoscaling", "Observability", "RepairSchedule"])
    for resource in default_plan.resources:
        if resource.type == "refarch:infra:Edge":
            assert components[resource.parent].type == "refarch:infra:Services"
        elif resource.type.startswith("refarch:infra:") or resource.type == "pulumi:providers:aws":
            assert resource.parent == "", resource.name  # top level
        else:
            assert resource.parent in components, f"{resource.type} {resource.name} is orphaned"


def test_components_register_real_outputs(default_plan: Plan) -> None:
    for component in default_plan.components():
        registered = default_plan.component_outputs.get(component.urn)
        assert registered, f"{component.name} registered no outputs"

        def walk(value: Any, owner: str = component.name) -> None:
            assert value not in (None, ""), f"{owner} registered an empty output"
            if isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(registered)


def test_stack_outputs(default_plan: Plan) -> None:
    outputs = default_plan.outputs
    for name in ("app_url", "database_endpoint", "queue_url", "dlq_url", "index_host",
                 "dashboard_url"):
        assert outputs[name], name
    queue, dlq = t.queues(default_plan)
    assert queue is not None and dlq is not None
    assert outputs["queue_url"] == queue.outputs["url"]
    assert outputs["dlq_url"] == dlq.outputs["url"]
    assert outputs["index_host"] == default_plan.one(t.INDEX).outputs["host"]
    assert outputs["app_url"] == "https://refarch.example.com"
    assert outputs["database_endpoint"] == default_plan.one(t.RDS).outputs["endpoint"]
    assert set(outputs["task_definition_arns"]) == {*t.SERVICE_ROLES, "migrate", "reconcile"}
    assert outputs["user_pool_id"] == default_plan.one(t.USER_POOL).outputs["id"]
    assert outputs["certificate_validation"]["type"] == "CNAME"


def test_default_shape(default_plan: Plan) -> None:
    tiers = t.subnet_tiers(default_plan)
    assert sorted(tiers.values()) == ["private", "private", "public", "public"]
    zones = {s.plain["availabilityZone"] for s in default_plan.of_type(t.SUBNET)}
    assert len(zones) == 2
    assert len(default_plan.of_type(t.NAT)) == 1
    assert default_plan.one(t.INDEX).plain["dimension"] == DIMENSION
    views = t.services(default_plan)
    assert set(views) == set(t.SERVICE_ROLES)
    assert views["indexer"].main_container["command"] == ["indexer", "--workers", "1"]
    assert len(default_plan.of_type(t.IMAGE)) == 1  # built from the Dockerfile by default


def test_every_ecs_command_is_a_container_role(default_plan: Plan) -> None:
    from refarch.cli.container import ENTRYPOINTS

    commands = {tuple(c["command"]) for task in default_plan.of_type(t.TASK_DEF)
                for c in t.containers_of(task)}
    assert {c[0] for c in commands} == set(ENTRYPOINTS)


def test_only_the_migration_and_repair_tasks_hold_the_master_url(default_plan: Plan) -> None:
    master = default_plan.one(t.RDS).plain["username"]
    urls = t.database_urls(default_plan)
    holders = {}
    for task in default_plan.of_type(t.TASK_DEF):
        for container in t.containers_of(task):
            for name, arn in t.container_secrets(container).items():
                if t.url_user(urls.get(arn, "")) == master:
                    holders[task.plain["family"]] = name
    assert holders == {"refarch-dev-migrate": "DATABASE_URL",
                       "refarch-dev-reconcile": "DATABASE_URL"}
    for role, view in t.services(default_plan).items():
        arn = t.container_secrets(view.main_container)[f"REFARCH_{role.upper()}_DATABASE_URL"]
        assert t.url_user(urls[arn]) == f"refarch_{role}"
        assert "sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem" in urls[arn]


def test_repair_runs_on_a_schedule(default_plan: Plan) -> None:
    schedule = default_plan.one(t.SCHEDULE).plain
    assert schedule["scheduleExpression"] == "rate(1 hour)"
    task = t.standalone_tasks(default_plan)["reconcile"]
    assert schedule["target"]["ecsParameters"]["taskDefinitionArn"] == task.outputs["arn"]
    assert t.containers_of(task)[0]["command"] == ["reconcile", "--repair"]
    ages = {a.plain["name"]: a.plain["threshold"] for a in default_plan.of_type(t.ALARM)
            if a.plain["metricName"] == "ApproximateAgeOfOldestMessage"}
    # 50% of 4 days and of 14 days: days before SQS would delete the message.
    assert ages["refarch-dev-queue-retention"] == 2 * 86_400
    assert ages["refarch-dev-dlq-retention"] == 7 * 86_400


# --- settings change what they say --------------------------------------------------------------


def _listeners(plan: Plan) -> dict[int, dict[str, Any]]:
    return {int(x.plain["port"]): x.plain for x in plan.of_type(t.LISTENER)}


def test_https_and_sign_in_by_default(default_plan: Plan) -> None:
    listeners = _listeners(default_plan)
    assert listeners[443]["protocol"] == "HTTPS"
    actions = sorted(listeners[443]["defaultActions"], key=lambda a: a["order"])
    assert [a["type"] for a in actions] == ["authenticate-cognito", "forward"]
    assert listeners[80]["defaultActions"][0]["type"] == "redirect"
    ports = sorted(int(r.plain["fromPort"]) for r in default_plan.of_type(t.INGRESS)
                   if r.plain.get("cidrIpv4"))
    assert ports == [80, 443]
    # The certificate is requested for the domain and the listener waits for its validation.
    assert default_plan.one(t.CERTIFICATE).plain["domainName"] == "refarch.example.com"
    validation = default_plan.one(t.CERTIFICATE_VALIDATION)
    assert listeners[443]["certificateArn"] == validation.outputs["certificateArn"]


def test_https_with_a_certificate(plan_with: Any) -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    plan = plan_with(certificate_arn=arn, domain_name="search.example.org")
    assert rules.mandatory(rules.check(plan)) == []
    assert _listeners(plan)[443]["certificateArn"] == arn
    assert plan.of_type(t.CERTIFICATE) == []
    assert plan.outputs["app_url"] == "https://search.example.org"


def test_domain_in_a_hosted_zone_gets_validation_and_alias_records(plan_with: Any) -> None:
    plan = plan_with(domain_name="search.example.org", hosted_zone_id="Z123EXAMPLE")
    records = {r.plain["type"]: r.plain for r in plan.of_type("aws:route53/record:Record")}
    assert records["A"]["name"] == "search.example.org"
    assert records["CNAME"]["name"].endswith(".search.example.org.")
    validation = plan.one(t.CERTIFICATE_VALIDATION).plain
    assert validation["validationRecordFqdns"] == [records["CNAME"]["name"].rstrip(".")]
    assert rules.mandatory(rules.check(plan)) == []


def test_oidc_sign_in(plan_with: Any) -> None:
    issuer = "https://login.example.org"
    plan = plan_with(domain_name="search.example.org", auth_provider="oidc",
                     oidc_issuer=issuer, oidc_authorization_endpoint=f"{issuer}/authorize",
                     oidc_token_endpoint=f"{issuer}/token",
                     oidc_user_info_endpoint=f"{issuer}/userinfo", oidc_client_id="refarch")
    action = sorted(_listeners(plan)[443]["defaultActions"], key=lambda a: a["order"])[0]
    assert action["type"] == "authenticate-oidc"
    assert action["authenticateOidc"]["issuer"] == issuer
    assert plan.of_type(t.USER_POOL) == []
    listener = next(x for x in plan.of_type(t.LISTENER) if x.plain["port"] == 443)
    # The client secret travels as a secret (the offline plan's placeholder).
    assert is_secret(listener.inputs["defaultActions"])
    assert rules.check(plan, ["secret-values-never-plaintext"]) == []
    assert rules.mandatory(rules.check(plan)) == []


def test_unsafe_opt_outs_serve_plain_http_and_warn(plan_with: Any) -> None:
    plan = plan_with(unsafe_no_tls=True, unsafe_no_sign_in=True)
    listeners = _listeners(plan)
    assert list(listeners) == [80] and listeners[80]["defaultActions"][0]["type"] == "forward"
    assert plan.of_type(t.USER_POOL) == [] and plan.of_type(t.CERTIFICATE) == []
    violations = rules.check(plan)
    assert rules.mandatory(violations) == []
    warnings = [v.message for v in violations if v.rule == "unsafe-opt-outs-reported"]
    assert any("unsafeNoTls" in w for w in warnings) and any("unsafeNoSignIn" in w
                                                             for w in warnings)
    no_sign_in = plan_with(unsafe_no_sign_in=True, domain_name="search.example.org")
    actions = _listeners(no_sign_in)[443]["defaultActions"]
    assert [a["type"] for a in actions] == ["forward"]
    assert rules.mandatory(rules.check(no_sign_in)) == []


def test_indexer_database_access_can_be_turned_off(plan_with: Any, default_plan: Plan) -> None:
    def indexer_reaches_db(plan: Plan) -> bool:
        indexer_sg = t.services(plan)["indexer"].security_group_ids[0]
        return any(r.plain.get("referencedSecurityGroupId") == indexer_sg
                   for r in plan.of_type(t.INGRESS))

    # refarch's indexer re-reads rows from Postgres: by default it gets the database.
    assert indexer_reaches_db(default_plan)
    view = t.services(default_plan)["indexer"]
    assert "REFARCH_INDEXER_DATABASE_URL" in t.container_secrets(view.main_container)
    assert [c["name"] for c in view.containers] == ["wait-for-schema", "indexer"]
    plan = plan_with(indexer_reads_database=False)
    assert not indexer_reaches_db(plan)
    view = t.services(plan)["indexer"]
    assert not any(n.endswith("DATABASE_URL") for n in t.container_secrets(view.main_container))
    assert [c["name"] for c in view.containers] == ["indexer"]
    assert rules.mandatory(rules.check(plan)) == []


def test_prebuilt_image_skips_the_build(plan_with: Any) -> None:
    uri = "public.ecr.aws/example/refarch@sha256:" + "ab" * 32
    plan = plan_with(image_uri=uri)
    assert plan.of_type(t.IMAGE) == []
    images = {c["image"] for task in plan.of_type(t.TASK_DEF) for c in t.containers_of(task)}
    assert images == {uri}
    assert rules.mandatory(rules.check(plan)) == []


def test_data_is_protected_unless_disposable(plan_with: Any, default_plan: Plan) -> None:
    db = default_plan.one(t.RDS).plain
    assert db["deletionProtection"] is True and db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"] == "refarch-dev-postgres-final"
    assert default_plan.one(t.INDEX).plain["deletionProtection"] == "enabled"
    assert default_plan.one(t.REPOSITORY).plain["forceDelete"] is False
    assert {s.plain["recoveryWindowInDays"] for s in default_plan.of_type(t.SECRET)} == {30}
    plan = plan_with(disposable=True)
    db = plan.one(t.RDS).plain
    assert db["deletionProtection"] is False and db["skipFinalSnapshot"] is True
    assert plan.one(t.INDEX).plain["deletionProtection"] == "disabled"
    assert {s.plain["recoveryWindowInDays"] for s in plan.of_type(t.SECRET)} == {0}
    violations = rules.check(plan)
    assert rules.mandatory(violations) == []
    assert any("disposable=true" in v.message for v in violations if not v.mandatory)


def test_three_zones_with_a_nat_each(plan_with: Any) -> None:
    plan = plan_with(az_count=3, nat_gateway_count=3)
    assert len(plan.of_type(t.SUBNET)) == 6 and len(plan.of_type(t.NAT)) == 3
    routes = {r.plain["natGatewayId"] for r in plan.of_type(t.ROUTE) if r.plain.get("natGatewayId")}
    assert len(routes) == 3  # each private subnet leaves through its own AZ's NAT
    assert rules.mandatory(rules.check(plan)) == []


def test_restricted_alb_and_custom_sizes(plan_with: Any) -> None:
    plan = plan_with(alb_ingress_cidrs=("203.0.113.0/24",), app_max_tasks=6,
                     indexer_max_tasks=12, indexer_backlog_per_task=50, log_retention_days=90,
                     extra_tags={"team": "search"})
    assert {r.plain["cidrIpv4"] for r in plan.of_type(t.INGRESS) if r.plain.get("cidrIpv4")} == {
        "203.0.113.0/24"}
    assert all(g.plain["retentionInDays"] == 90 for g in plan.of_type(t.LOG_GROUP))
    assert plan.one(t.RDS).plain["tags"]["team"] == "search"
    assert rules.mandatory(rules.check(plan)) == []


def test_rules_follow_the_config_they_are_given(plan_with: Any, default_plan: Plan) -> None:
    # The same resources judged against a config that asks for something else fail.
    stricter = dataclasses.replace(
        default_plan,
        config=load_infra("config").StackConfig(log_retention_days=90, indexer_max_tasks=12))
    failing = {v.rule for v in rules.check(stricter)}
    assert {"log-retention", "indexer-scales-on-backlog-per-task"} <= failing


# --- configuration ---------------------------------------------------------------------------------


def test_config_parses_pulumi_strings(stack_config_class: Any) -> None:
    values = {"azCount": "3", "natGatewayCount": "2", "disposable": "true",
              "albIngressCidrs": "10.0.0.0/8, 192.168.0.0/16",
              "extraTags": '{"team": "search"}', "certificateArn": ""}
    config = stack_config_class.from_values(values.get, stack="prod")
    assert config.az_count == 3 and config.nat_gateway_count == 2 and config.disposable
    assert config.alb_ingress_cidrs == ("10.0.0.0/8", "192.168.0.0/16")
    assert config.extra_tags == {"team": "search"}
    assert config.certificate_arn is None
    assert config.tags == {"team": "search", "project": "refarch", "stack": "prod",
                           "managed-by": "pulumi"}
    again = stack_config_class.from_values(config.to_values().get, stack="prod")
    assert again == config


@pytest.mark.parametrize(("values", "key"), [
    ({"azCount": "1"}, "refarch:azCount"),
    ({"azCount": "two"}, "refarch:azCount"),
    ({"natGatewayCount": "3"}, "refarch:natGatewayCount"),
    ({"appCpu": "300"}, "refarch:appCpu"),
    ({"appMemoryMb": "8192"}, "refarch:appMemoryMb"),
    ({"indexerMaxTasks": "0"}, "refarch:indexerMaxTasks"),
    ({"logRetentionDays": "10"}, "refarch:logRetentionDays"),
    ({"dbBackupRetentionDays": "0"}, "refarch:dbBackupRetentionDays"),
    ({"albIngressCidrs": "everyone"}, "refarch:albIngressCidrs"),
    ({"disposable": "maybe"}, "refarch:disposable"),
    ({"domainName": "not a name"}, "refarch:domainName"),
    ({"hostedZoneId": "Z1"}, "refarch:hostedZoneId"),
    ({"authProvider": "saml"}, "refarch:authProvider"),
    ({"authProvider": "oidc", "domainName": "a.example.org"}, "refarch:oidcIssuer"),
    ({"secretRecoveryDays": "3"}, "refarch:secretRecoveryDays"),
    ({"reconcileSchedule": "every hour"}, "refarch:reconcileSchedule"),
    ({"unsafeNoTls": "true", "certificateArn": "arn:aws:acm:x"}, "refarch:unsafeNoTls"),
    ({"namePrefix": "Refarch_Prod"}, "refarch:namePrefix"),
    ({"namePrefix": "a-very-long-prefix-x", "stack": "production-east"}, "refarch:namePrefix"),
    ({"indexName": "Products!"}, "refarch:indexName"),
    ({"dlqRetentionDays": "2"}, "refarch:dlqRetentionDays"),
    ({"extraTags": "[1, 2]"}, "refarch:extraTags"),
])
def test_bad_config_is_rejected_naming_the_key(stack_config_class: Any, values: dict,
                                               key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        stack_config_class.from_values(values.get)


def test_infra_reads_pulumi_config_only_in_its_entry_point() -> None:
    infra_dir = load_infra("program").__file__.rsplit("/", 1)[0]
    readers = []
    for name in (*COMPONENT_FILES, "program", "config"):
        text = open(f"{infra_dir}/{name}.py", encoding="utf-8").read()
        if "pulumi.Config(" in text:
            readers.append(name)
    assert readers == []
    assert "pulumi.Config(" in open(f"{infra_dir}/__main__.py", encoding="utf-8").read()


def test_model_dimension_is_not_configurable(stack_config_class: Any) -> None:
    fields = set(stack_config_class.__dataclass_fields__)
    assert not {f for f in fields if "dimension" in f or "metric" in f}
    assert importlib.import_module("refarch.model_spec").DIMENSION == DIMENSION
