"""Every security and wiring rule holds for the real program, and catches its own breakage.

The first test runs each rule of :mod:`refarch.deploy.rules` on the offline plan of the real
program. The second breaks the plan on purpose, one rule at a time (an ingress opened to the
internet, a public database, a secret moved into plaintext environment, CPU scaling for the
indexer, ...), and checks that the rule reports it: a rule that cannot fail is caught here.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from refarch.deploy import rules
from refarch.deploy import topology as t
from refarch.deploy.plan import Plan, PlannedResource


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
def test_rule_holds_for_the_program(rule: rules.Rule, default_plan: Plan,
                                    configured_plan: Plan) -> None:
    if rule.level == rules.MANDATORY:
        assert rule.check(default_plan) == []
    # A real deploy's settings (a domain, an alarm e-mail) leave not even a warning.
    assert rule.check(configured_plan) == []


def test_the_default_plan_warns_about_its_placeholders(default_plan: Plan) -> None:
    warnings = [v for v in rules.check(default_plan) if not v.mandatory]
    assert [v.rule for v in warnings] == ["unsafe-opt-outs-reported"] * 2 + [
        "image-pins-filled-in"] * 5
    assert "placeholder refarch.example.com" in warnings[0].message
    # The Dockerfile's placeholder pins warn here and refuse a real deploy.
    assert [v.refuses_deploy for v in warnings] == [False] * 2 + [True] * 5
    assert rules.mandatory(rules.check(default_plan)) == []


def test_the_dockerfile_build_is_pinned(default_plan: Plan, tmp_path: Any) -> None:
    assert rules.check(default_plan, ["image-build-pinned"]) == []
    unpinned = tmp_path / "Dockerfile"
    unpinned.write_text("FROM python:3.11-slim\nRUN pip install requests\n", encoding="utf-8")
    broken = _edit(default_plan, t.IMAGE, lambda r: True,
                   lambda i: i["dockerfile"].update(location=str(unpinned)))
    messages = [v.message for v in rules.check(broken, ["image-build-pinned"])]
    assert "base image python:3.11-slim is not pinned by digest (@sha256:...)" in messages


def test_there_are_rules_for_every_area_of_the_issue() -> None:
    names = {r.name for r in rules.RULES}
    for expected in (
        "public-ingress-only-to-alb", "app-ingress-only-from-alb", "workers-take-no-ingress",
        "database-ingress-only-from-its-clients", "database-private",
        "database-encrypted-and-backed-up", "queues-encrypted", "dead-letter-queue-with-redrive",
        "secrets-injected-not-plaintext", "secret-values-never-plaintext",
        "indexer-scales-on-backlog-per-task", "app-scales-on-cpu-or-requests", "log-retention",
        "index-matches-model", "everything-tagged", "migrations-before-services",
        # issue 13
        "https-with-sign-in", "sign-up-by-operators-only", "unsafe-opt-outs-reported",
        "master-secret-only-in-migration-task", "services-use-their-own-database-role",
        "secrets-readable-only-by-their-task", "database-tls-verified", "scheduled-repair",
        "alarm-before-retention", "alarms-reach-the-configured-email",
        "data-protected-unless-disposable", "image-build-pinned", "image-pins-filled-in",
    ):
        assert expected in names


# --- breaking the plan on purpose ---------------------------------------------------------------


def _edit(plan: Plan, type_: str, match: Callable[[PlannedResource], bool],
          change: Callable[[dict[str, Any]], None]) -> Plan:
    """A copy of ``plan`` with ``change`` applied to the inputs of each matching resource."""
    resources = []
    hits = 0
    for resource in plan.resources:
        if resource.type == type_ and match(resource):
            inputs = copy.deepcopy(resource.inputs)
            change(inputs)
            resource = dataclasses.replace(resource, inputs=inputs)
            hits += 1
        resources.append(resource)
    assert hits, f"the mutation matched no {type_}"
    return dataclasses.replace(plan, resources=tuple(resources))


def _add(plan: Plan, type_: str, name: str, inputs: dict[str, Any]) -> Plan:
    extra = PlannedResource(type_, name, f"urn:test::{name}", "", True, f"{name}-id", inputs, {})
    return dataclasses.replace(plan, resources=plan.resources + (extra,))


def _sg(plan: Plan, role: str) -> str:
    return next(sg for sg, r in t.security_group_roles(plan).items() if r == role)


def _service_task(plan: Plan, role: str) -> Callable[[PlannedResource], bool]:
    family = t.services(plan)[role].task_definition.plain["family"]  # type: ignore[union-attr]
    return lambda r: r.plain.get("family") == family


def _edit_containers(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[dict], None]:
    def apply(inputs: dict[str, Any]) -> None:
        containers = json.loads(inputs["containerDefinitions"])
        change(containers)
        inputs["containerDefinitions"] = json.dumps(containers)
    return apply


def _main(containers: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return next(c for c in containers if c["name"] == role)


def _open_database_to_internet(p: Plan) -> Plan:
    return _add(p, t.INGRESS, "db-world", {"securityGroupId": _sg(p, "database"), "fromPort": 5432,
                                           "toPort": 5432, "ipProtocol": "tcp",
                                           "cidrIpv4": "0.0.0.0/0"})


def _alb_open_on_ssh(p: Plan) -> Plan:
    return _add(p, t.INGRESS, "alb-ssh", {"securityGroupId": _sg(p, "alb"), "fromPort": 22,
                                          "toPort": 22, "ipProtocol": "tcp",
                                          "cidrIpv4": "0.0.0.0/0"})


def _app_from_relay(p: Plan) -> Plan:
    relay = _sg(p, "relay")
    return _edit(p, t.INGRESS, lambda r: r.plain.get("securityGroupId") == _sg(p, "app"),
                 lambda i: i.update(referencedSecurityGroupId=relay))


def _indexer_ingress(p: Plan) -> Plan:
    return _add(p, t.INGRESS, "indexer-in", {"securityGroupId": _sg(p, "indexer"),
                                             "referencedSecurityGroupId": _sg(p, "alb"),
                                             "fromPort": 8080, "toPort": 8080,
                                             "ipProtocol": "tcp"})


def _database_from_alb(p: Plan) -> Plan:
    return _add(p, t.INGRESS, "db-alb", {"securityGroupId": _sg(p, "database"),
                                         "referencedSecurityGroupId": _sg(p, "alb"),
                                         "fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"})


def _database_on_all_ports(p: Plan) -> Plan:
    relay = _sg(p, "relay")
    return _edit(p, t.INGRESS, lambda r: r.plain.get("referencedSecurityGroupId") == relay
                 and r.plain.get("securityGroupId") == _sg(p, "database"),
                 lambda i: i.update(fromPort=0, toPort=65535))


def _relay_cut_from_database(p: Plan) -> Plan:
    relay = _sg(p, "relay")
    kept = tuple(r for r in p.resources
                 if not (r.type == t.INGRESS and r.plain.get("referencedSecurityGroupId") == relay))
    assert len(kept) == len(p.resources) - 1
    return dataclasses.replace(p, resources=kept)


def _inline_rule(p: Plan) -> Plan:
    return _edit(p, t.SG, lambda r: r.id == _sg(p, "relay"), lambda i: i.update(
        ingress=[{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["10.0.0.0/8"]}]))


def _app_public_ip(p: Plan) -> Plan:
    return _edit(p, t.SERVICE, lambda r: r.plain.get("name", "").endswith("-app"),
                 lambda i: i["networkConfiguration"].update(assignPublicIp=True))


def _public_database(p: Plan) -> Plan:
    return _edit(p, t.RDS, lambda r: True, lambda i: i.update(publiclyAccessible=True))


def _database_in_public_subnet(p: Plan) -> Plan:
    public = next(s for s, tier in t.subnet_tiers(p).items() if tier == "public")
    return _edit(p, t.RDS_SUBNETS, lambda r: True,
                 lambda i: i.update(subnetIds=[*i["subnetIds"][:1], public]))


def _unencrypted_database(p: Plan) -> Plan:
    return _edit(p, t.RDS, lambda r: True, lambda i: i.update(storageEncrypted=False))


def _no_backups(p: Plan) -> Plan:
    return _edit(p, t.RDS, lambda r: True, lambda i: i.update(backupRetentionPeriod=0))


def _plaintext_password(p: Plan) -> Plan:
    return _edit(p, t.RDS, lambda r: True, lambda i: i.update(password="hunter2hunter2"))


def _unencrypted_dlq(p: Plan) -> Plan:
    return _edit(p, t.QUEUE, lambda r: "dlq" in r.plain.get("name", ""),
                 lambda i: i.update(sqsManagedSseEnabled=False))


def _no_redrive(p: Plan) -> Plan:
    return _edit(p, t.QUEUE, lambda r: bool(r.plain.get("redrivePolicy")),
                 lambda i: i.pop("redrivePolicy"))


def _redrive_after_fifty(p: Plan) -> Plan:
    def change(i: dict[str, Any]) -> None:
        policy = json.loads(i["redrivePolicy"])
        policy["maxReceiveCount"] = 50
        i["redrivePolicy"] = json.dumps(policy)
    return _edit(p, t.QUEUE, lambda r: bool(r.plain.get("redrivePolicy")), change)


def _alarm_on_wrong_queue(p: Plan) -> Plan:
    queue, _ = t.queues(p)
    assert queue is not None
    return _edit(p, t.ALARM, lambda r: "dlq" in str(r.plain.get("dimensions")),
                 lambda i: i.update(dimensions={"QueueName": queue.outputs["name"]}))


def _database_url_in_environment(p: Plan) -> Plan:
    def change(containers: list[dict[str, Any]]) -> None:
        app = _main(containers, "app")
        app["secrets"] = [s for s in app["secrets"] if s["name"] != "DATABASE_URL"]
        app["environment"].append({"name": "DATABASE_URL", "value": "postgresql://x@y/z"})
    return _edit(p, t.TASK_DEF, _service_task(p, "app"), _edit_containers(change))


def _password_leaked_in_environment(p: Plan) -> Plan:
    password = next(r for r in p.of_type(t.RDS)).plain["password"]

    def change(containers: list[dict[str, Any]]) -> None:
        _main(containers, "relay")["environment"].append({"name": "DB_INFO", "value": password})
    return _edit(p, t.TASK_DEF, _service_task(p, "relay"), _edit_containers(change))


def _secret_in_a_log_group(p: Plan) -> Plan:
    secret = next(r for r in p.of_type(t.RDS)).inputs["password"]
    return _edit(p, t.LOG_GROUP, lambda r: r.plain["name"].endswith("/app"),
                 lambda i: i.update(kmsKeyId=secret))


def _wildcard_iam(p: Plan) -> Plan:
    def change(i: dict[str, Any]) -> None:
        document = json.loads(i["policy"])
        document["Statement"].append({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
        i["policy"] = json.dumps(document)
    return _edit(p, t.ROLE_POLICY, lambda r: r.name.endswith("indexer-task"), change)


def _logs_forever(p: Plan) -> Plan:
    return _edit(p, t.LOG_GROUP, lambda r: r.plain["name"].endswith("/indexer"),
                 lambda i: i.pop("retentionInDays"))


def _no_migration_wait(p: Plan) -> Plan:
    return _edit(p, t.TASK_DEF, _service_task(p, "app"),
                 _edit_containers(lambda cs: _main(cs, "app").pop("dependsOn")))


def _health_check_on_root(p: Plan) -> Plan:
    return _edit(p, t.TARGET_GROUP, lambda r: True,
                 lambda i: i["healthCheck"].update(path="/"))


def _indexer_receive_count_mismatch(p: Plan) -> Plan:
    def change(containers: list[dict[str, Any]]) -> None:
        for env in _main(containers, "indexer")["environment"]:
            if env["name"] == "REFARCH_QUEUE_MAX_RECEIVES":
                env["value"] = "3"
    return _edit(p, t.TASK_DEF, _service_task(p, "indexer"), _edit_containers(change))


def _indexer_on_cpu(p: Plan) -> Plan:
    return _edit(p, t.SCALING_POLICY, lambda r: "indexer" in r.plain["resourceId"],
                 lambda i: i.update(targetTrackingScalingPolicyConfiguration={
                     "targetValue": 60, "predefinedMetricSpecification": {
                         "predefinedMetricType": "ECSServiceAverageCPUUtilization"}}))


def _indexer_on_raw_backlog(p: Plan) -> Plan:
    def change(i: dict[str, Any]) -> None:
        for metric in i["targetTrackingScalingPolicyConfiguration"][
                "customizedMetricSpecification"]["metrics"]:
            if metric.get("returnData"):
                metric["expression"] = "backlog"
    return _edit(p, t.SCALING_POLICY, lambda r: "indexer" in r.plain["resourceId"], change)


def _app_bounds(p: Plan) -> Plan:
    return _edit(p, t.SCALING_TARGET, lambda r: r.plain["resourceId"].endswith("-app"),
                 lambda i: i.update(maxCapacity=40))


def _wrong_dimension(p: Plan) -> Plan:
    return _edit(p, t.INDEX, lambda r: True, lambda i: i.update(dimension=768))


def _no_scan(p: Plan) -> Plan:
    return _edit(p, t.REPOSITORY, lambda r: True,
                 lambda i: i.update(imageScanningConfiguration={"scanOnPush": False}))


def _untagged_subnet_group(p: Plan) -> Plan:
    return _edit(p, t.RDS_SUBNETS, lambda r: True, lambda i: i.pop("tags"))


def _listener(p: Plan, port: int) -> Callable[[PlannedResource], bool]:
    return lambda r: r.plain.get("port") == port


def _https_without_sign_in(p: Plan) -> Plan:
    return _edit(p, t.LISTENER, _listener(p, 443), lambda i: i.update(defaultActions=[
        a for a in i["defaultActions"] if a["type"] == "forward"]))


def _http_forwards(p: Plan) -> Plan:
    forward = next(a for r in p.of_type(t.LISTENER) for a in r.plain["defaultActions"]
                   if a["type"] == "forward")
    return _edit(p, t.LISTENER, _listener(p, 80), lambda i: i.update(defaultActions=[forward]))


def _old_tls(p: Plan) -> Plan:
    return _edit(p, t.LISTENER, _listener(p, 443),
                 lambda i: i.update(sslPolicy="ELBSecurityPolicy-2016-08"))


def _alb_cut_from_the_idp(p: Plan) -> Plan:
    kept = tuple(r for r in p.resources if not r.name.endswith("alb-to-idp"))
    assert len(kept) == len(p.resources) - 1
    return dataclasses.replace(p, resources=kept)


def _self_sign_up(p: Plan) -> Plan:
    return _edit(p, t.USER_POOL, lambda r: True, lambda i: i.update(
        adminCreateUserConfig={"allowAdminCreateUserOnly": False}))


def _implicit_flow(p: Plan) -> Plan:
    return _edit(p, t.USER_POOL_CLIENT, lambda r: True,
                 lambda i: i.update(allowedOauthFlows=["implicit"]))


def _workshop_without_sign_in(p: Plan) -> Plan:
    return dataclasses.replace(p, config=dataclasses.replace(p.config, unsafe_no_sign_in=True))


def _master_arn(p: Plan) -> str:
    user = p.one(t.RDS).plain["username"]
    return next(arn for arn, url in t.database_urls(p).items() if t.url_user(url) == user)


def _app_gets_master(p: Plan) -> Plan:
    master = _master_arn(p)

    def change(containers: list[dict[str, Any]]) -> None:
        _main(containers, "app")["secrets"].append({"name": "DATABASE_URL", "valueFrom": master})
    return _edit(p, t.TASK_DEF, _service_task(p, "app"), _edit_containers(change))


def _relay_uses_the_app_role(p: Plan) -> Plan:
    app = t.container_secrets(t.services(p)["app"].main_container or {})["REFARCH_APP_DATABASE_URL"]

    def change(containers: list[dict[str, Any]]) -> None:
        for secret in _main(containers, "relay")["secrets"]:
            if secret["name"] == "REFARCH_RELAY_DATABASE_URL":
                secret["valueFrom"] = app
    return _edit(p, t.TASK_DEF, _service_task(p, "relay"), _edit_containers(change))


def _app_execution_role_reads_master(p: Plan) -> Plan:
    master = _master_arn(p)

    def change(i: dict[str, Any]) -> None:
        document = json.loads(i["policy"])
        document["Statement"][0]["Resource"].append(master)
        i["policy"] = json.dumps(document)
    return _edit(p, t.ROLE_POLICY, lambda r: r.name.endswith("app-execution-secrets"), change)


def _task_role_reads_secrets(p: Plan) -> Plan:
    master = _master_arn(p)

    def change(i: dict[str, Any]) -> None:
        document = json.loads(i["policy"])
        document["Statement"].append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                      "Resource": master})
        i["policy"] = json.dumps(document)
    return _edit(p, t.ROLE_POLICY, lambda r: r.name.endswith("services-relay-task"), change)


def _unverified_tls(p: Plan) -> Plan:
    def change(i: dict[str, Any]) -> None:
        i["secretString"]["value"] = i["secretString"]["value"].split("?")[0] + "?sslmode=require"
    return _edit(p, t.SECRET_VERSION, lambda r: r.name == "database-relay-url", change)


def _no_schedule(p: Plan) -> Plan:
    kept = tuple(r for r in p.resources if r.type != t.SCHEDULE)
    return dataclasses.replace(p, resources=kept)


def _repair_without_repairing(p: Plan) -> Plan:
    return _edit(p, t.TASK_DEF, lambda r: r.plain.get("family", "").endswith("-reconcile"),
                 _edit_containers(lambda cs: cs[0].update(command=["reconcile"])))


def _alarm_after_expiry(p: Plan) -> Plan:
    # The DLQ has no other age alarm (the change queue's freshness alarm fires far earlier).
    return _edit(p, t.ALARM, lambda r: r.plain.get("name", "").endswith("-dlq-retention"),
                 lambda i: i.update(threshold=14 * 86_400))


def _email_not_subscribed(p: Plan) -> Plan:
    kept = tuple(r for r in p.resources if r.type != t.SUBSCRIPTION)
    return dataclasses.replace(p, resources=kept)


def _no_deletion_protection(p: Plan) -> Plan:
    return _edit(p, t.RDS, lambda r: True, lambda i: i.update(deletionProtection=False))


def _secret_deleted_at_once(p: Plan) -> Plan:
    return _edit(p, t.SECRET, lambda r: r.name == "database-url",
                 lambda i: i.update(recoveryWindowInDays=0))


def _image_by_tag(p: Plan) -> Plan:
    return dataclasses.replace(p, config=dataclasses.replace(
        p.config, image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch:latest"))


def _image_digest_placeholder(p: Plan) -> Plan:
    return dataclasses.replace(p, config=dataclasses.replace(
        p.config, image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/refarch@sha256:"
        + "0" * 64))


MUTATIONS: list[tuple[str, Callable[[Plan], Plan]]] = [
    ("image-build-pinned", _image_by_tag),
    ("image-pins-filled-in", _image_digest_placeholder),
    ("https-with-sign-in", _https_without_sign_in),
    ("https-with-sign-in", _http_forwards),
    ("https-with-sign-in", _old_tls),
    ("https-with-sign-in", _alb_cut_from_the_idp),
    ("sign-up-by-operators-only", _self_sign_up),
    ("sign-up-by-operators-only", _implicit_flow),
    ("unsafe-opt-outs-reported", _workshop_without_sign_in),
    ("master-secret-only-in-migration-task", _app_gets_master),
    ("services-use-their-own-database-role", _relay_uses_the_app_role),
    ("secrets-readable-only-by-their-task", _app_execution_role_reads_master),
    ("secrets-readable-only-by-their-task", _task_role_reads_secrets),
    ("database-tls-verified", _unverified_tls),
    ("scheduled-repair", _no_schedule),
    ("scheduled-repair", _repair_without_repairing),
    ("alarm-before-retention", _alarm_after_expiry),
    ("alarms-reach-the-configured-email", _email_not_subscribed),
    ("data-protected-unless-disposable", _no_deletion_protection),
    ("data-protected-unless-disposable", _secret_deleted_at_once),
    ("public-ingress-only-to-alb", _open_database_to_internet),
    ("public-ingress-only-to-alb", _alb_open_on_ssh),
    ("app-ingress-only-from-alb", _app_from_relay),
    ("workers-take-no-ingress", _indexer_ingress),
    ("database-ingress-only-from-its-clients", _database_from_alb),
    ("database-ingress-only-from-its-clients", _database_on_all_ports),
    ("database-ingress-only-from-its-clients", _relay_cut_from_database),
    ("database-ingress-only-from-its-clients", _open_database_to_internet),
    ("security-groups-accounted-for", _inline_rule),
    ("services-in-private-subnets", _app_public_ip),
    ("database-private", _public_database),
    ("database-private", _database_in_public_subnet),
    ("database-encrypted-and-backed-up", _unencrypted_database),
    ("database-encrypted-and-backed-up", _no_backups),
    ("database-password-is-secret", _plaintext_password),
    ("queues-encrypted", _unencrypted_dlq),
    ("dead-letter-queue-with-redrive", _no_redrive),
    ("dead-letter-queue-with-redrive", _redrive_after_fifty),
    ("dead-letter-alarm", _alarm_on_wrong_queue),
    ("secrets-injected-not-plaintext", _database_url_in_environment),
    ("secret-values-never-plaintext", _password_leaked_in_environment),
    ("secret-values-never-plaintext", _secret_in_a_log_group),
    ("least-privilege-iam", _wildcard_iam),
    ("log-retention", _logs_forever),
    ("migrations-before-services", _no_migration_wait),
    ("app-behind-health-checked-alb", _health_check_on_root),
    ("services-wired-to-queue-and-index", _indexer_receive_count_mismatch),
    ("indexer-scales-on-backlog-per-task", _indexer_on_cpu),
    ("indexer-scales-on-backlog-per-task", _indexer_on_raw_backlog),
    ("app-scales-on-cpu-or-requests", _app_bounds),
    ("index-matches-model", _wrong_dimension),
    ("image-scanned-and-encrypted", _no_scan),
    ("everything-tagged", _untagged_subnet_group),
]


@pytest.mark.parametrize(("rule_name", "mutation"), MUTATIONS,
                         ids=[f"{r}:{m.__name__.strip('_')}" for r, m in MUTATIONS])
def test_rule_catches_its_breakage(rule_name: str, mutation: Callable[[Plan], Plan],
                                   configured_plan: Plan) -> None:
    broken = mutation(configured_plan)
    assert rules.check(configured_plan, [rule_name]) == []
    violations = rules.check(broken, [rule_name])
    assert violations, f"{rule_name} did not notice {mutation.__name__}"


def test_every_rule_has_a_breakage_test() -> None:
    covered = {name for name, _ in MUTATIONS}
    assert {r.name for r in rules.RULES} <= covered


def test_an_empty_plan_violates_every_rule(configured_plan: Plan) -> None:
    # A rule that finds nothing to check must say so, never pass by default.
    empty = dataclasses.replace(configured_plan, resources=())
    failing = {v.rule for v in rules.check(empty)}
    # The warning rule judges the settings, which are fine here.
    assert failing == {r.name for r in rules.RULES} - {"unsafe-opt-outs-reported"}


def test_unknown_rule_names_are_rejected(default_plan: Plan) -> None:
    with pytest.raises(KeyError, match="no-such-rule"):
        rules.check(default_plan, ["no-such-rule"])


def test_database_rule_follows_the_indexer_setting(plan_with: Callable[..., Plan]) -> None:
    without = plan_with(indexer_reads_database=False)
    assert rules.check(without, ["database-ingress-only-from-its-clients"]) == []
    reopened = _add(without, t.INGRESS, "db-indexer", {
        "securityGroupId": _sg(without, "database"),
        "referencedSecurityGroupId": _sg(without, "indexer"),
        "fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"})
    violations = rules.check(reopened, ["database-ingress-only-from-its-clients"])
    assert [v.message for v in violations] == ["db-indexer: database open to indexer"]


def test_docs_list_every_rule_with_its_level() -> None:
    from refarch.deploy.program import INFRA_DIR

    text = (INFRA_DIR.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    for r in rules.RULES:
        assert f"| `{r.name}` | {r.level}" in text, r.name
