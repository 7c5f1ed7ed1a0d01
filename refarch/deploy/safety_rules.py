"""The production-safety rules (issue 13): sign-in and TLS, per-service database credentials,
scheduled repair, data protection, and the loudly named opt-outs reported as warnings.

They register into :data:`refarch.deploy.rulebook.RULES` (``rules`` imports this module last)
and run wherever the other rules run: the offline plan, the tests, the policy pack.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from refarch.deploy import supply_chain
from refarch.deploy import topology as t
from refarch.deploy.rulebook import ADVISORY, MANDATORY, _num, role_url_variable, rule

if TYPE_CHECKING:
    from refarch.deploy.model import Plan, PlannedResource

#: ALB security policies that allow only TLS 1.2 and 1.3.
MODERN_TLS_POLICIES = frozenset({
    "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS-1-2-2017-01",
    "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
})
AUTHENTICATE = ("authenticate-cognito", "authenticate-oidc")
#: The master user of the RDS instance (``infra/database.py``).
MASTER_USER_KEY = "username"


def _actions(listener: PlannedResource) -> list[dict[str, Any]]:
    actions = list(listener.plain.get("defaultActions") or [])
    return sorted(actions, key=lambda a: _num(a.get("order")) or 0)


# --- 1. TLS and sign-in -----------------------------------------------------------------------


@rule("https-with-sign-in",
      "The ALB serves HTTPS on 443 (TLS 1.2+, a certificate) and authenticates every request "
      "(Cognito or OIDC) before forwarding it, its security group letting it reach the identity "
      "provider on 443; port 80 only redirects to HTTPS. Only the loudly named unsafeNoTls / "
      "unsafeNoSignIn opt-outs relax this.")
def _https_with_sign_in(plan: Plan) -> list[str]:
    listeners = plan.of_type(t.LISTENER)
    if not listeners:
        return ["no listener: the app is unreachable"]
    config = plan.config
    problems = []
    https = [lst for lst in listeners if lst.plain.get("protocol") == "HTTPS"]
    if config.tls and not https:
        problems.append("no HTTPS listener: the app would be served in plain HTTP "
                        "(set unsafeNoTls=true only for a workshop)")
    for listener in listeners:
        inputs = listener.plain
        actions = _actions(listener)
        kinds = [a.get("type") for a in actions]
        if inputs.get("protocol") == "HTTPS":
            if _num(inputs.get("port")) != 443:
                problems.append(f"{listener.name}: HTTPS on port {inputs.get('port')}, not 443")
            if inputs.get("sslPolicy") not in MODERN_TLS_POLICIES:
                problems.append(f"{listener.name}: TLS policy {inputs.get('sslPolicy')} allows "
                                "TLS older than 1.2")
            if not inputs.get("certificateArn"):
                problems.append(f"{listener.name}: no certificate")
            if config.sign_in:
                if not kinds or kinds[0] not in AUTHENTICATE:
                    problems.append(f"{listener.name}: forwards without authenticating first "
                                    f"(actions {kinds}); set unsafeNoSignIn=true only for a "
                                    "workshop")
                for action in actions:
                    body = action.get("authenticateCognito") or action.get("authenticateOidc")
                    if action.get("type") in AUTHENTICATE and (body or {}).get(
                            "onUnauthenticatedRequest", "authenticate") != "authenticate":
                        problems.append(f"{listener.name}: lets unauthenticated requests through")
        elif config.tls:
            redirect = actions[0].get("redirect") if len(actions) == 1 else None
            if kinds != ["redirect"] or (redirect or {}).get("protocol") != "HTTPS":
                problems.append(f"{listener.name}: {inputs.get('protocol')} on "
                                f"{inputs.get('port')} does {kinds}, not a redirect to HTTPS")
    if config.sign_in and https:
        roles = t.security_group_roles(plan)
        if not any(roles.get(r.plain.get("securityGroupId", "")) == "alb"
                   and r.plain.get("ipProtocol") == "tcp" and _num(r.plain.get("fromPort")) == 443
                   and (r.plain.get("cidrIpv4") or r.plain.get("cidrIpv6"))
                   for r in plan.of_type(t.EGRESS)):
            problems.append("the load balancer cannot reach the identity provider (no egress "
                            "on 443): every sign-in would fail")
    return problems


@rule("sign-up-by-operators-only",
      "The Cognito user pool lets no one sign themselves up, verifies e-mail, and its ALB client "
      "uses the code flow with a secret and the app's own https callback.")
def _cognito(plan: Plan) -> list[str]:
    config = plan.config
    pools = plan.of_type(t.USER_POOL)
    if not config.sign_in or config.auth_provider != "cognito":
        return []
    if not pools:
        return ["no Cognito user pool, although authProvider=cognito"]
    problems = []
    for pool in pools:
        admin = pool.plain.get("adminCreateUserConfig") or {}
        if admin.get("allowAdminCreateUserOnly") is not True:
            problems.append(f"{pool.name}: anyone may sign up")
        if "email" not in (pool.plain.get("autoVerifiedAttributes") or []):
            problems.append(f"{pool.name}: e-mail addresses are not verified")
    clients = plan.of_type(t.USER_POOL_CLIENT)
    if not clients:
        problems.append("no user pool client for the load balancer")
    expected = f"https://{config.app_domain}/oauth2/idpresponse"
    for client in clients:
        inputs = client.plain
        if inputs.get("generateSecret") is not True:
            problems.append(f"{client.name}: no client secret")
        if inputs.get("allowedOauthFlows") != ["code"]:
            problems.append(f"{client.name}: OAuth flows {inputs.get('allowedOauthFlows')}, "
                            "not the code flow only")
        if inputs.get("callbackUrls") != [expected]:
            problems.append(f"{client.name}: callbacks {inputs.get('callbackUrls')}, expected "
                            f"[{expected}]")
    return problems


@rule("unsafe-opt-outs-reported",
      "Warns about every loudly named unsafe setting that is on (no TLS, no sign-in, a "
      "disposable stack) and about the placeholder domain, which a deploy refuses.",
      level=ADVISORY)
def _unsafe(plan: Plan) -> list[str]:
    warnings = list(plan.config.unsafe_flags())
    if plan.config.uses_placeholder_domain:
        warnings.append(f"domainName is not set: this plan uses the placeholder "
                        f"{plan.config.app_domain}; `refarch deploy up` refuses it")
    if not plan.config.alarm_email:
        warnings.append("alarmEmail is not set: alarms go to an SNS topic nobody reads")
    return warnings


# --- 2. per-service database credentials -----------------------------------------------------


def _master_secret_arns(plan: Plan) -> set[str]:
    masters = {str(db.plain.get(MASTER_USER_KEY)) for db in plan.of_type(t.RDS)}
    return {arn for arn, url in t.database_urls(plan).items() if t.url_user(url) in masters}


@rule("master-secret-only-in-migration-task",
      "The master DATABASE_URL is injected only into standalone tasks (the migration and the "
      "scheduled repair), never into a service's task.")
def _master_only_in_tasks(plan: Plan) -> list[str]:
    masters = _master_secret_arns(plan)
    if not masters:
        return ["no secret holds the master user's URL"]
    problems = []
    for role, view in t.services(plan).items():
        for container in view.containers:
            for name, source in t.container_secrets(container).items():
                if source in masters or name == "DATABASE_URL":
                    problems.append(f"{role}/{container.get('name')}: gets the master "
                                    f"credentials ({name})")
    standalone = t.standalone_tasks(plan)
    migrate = standalone.get("migrate")
    if migrate is None or not any(
            set(t.container_secrets(c).values()) & masters for c in t.containers_of(migrate)):
        problems.append("the migration task does not get the master credentials")
    return problems


@rule("services-use-their-own-database-role",
      "Each service that uses the database gets only its own REFARCH_<ROLE>_DATABASE_URL, from "
      "its own secret, naming its own role (refarch_<role>).")
def _own_roles(plan: Plan) -> list[str]:
    urls = t.database_urls(plan)
    if not urls:
        return ["no Secrets Manager secret holds a database URL"]
    problems = []
    seen: dict[str, str] = {}
    for role, view in t.services(plan).items():
        main = view.main_container or {}
        injected = {n: s for n, s in t.container_secrets(main).items() if n.endswith("DATABASE_URL")}
        if not injected:
            continue
        expected = role_url_variable(role)
        if set(injected) != {expected}:
            problems.append(f"{role}: gets {sorted(injected)}, expected only {expected}")
            continue
        source = injected[expected]
        user = t.url_user(urls.get(source, ""))
        if user != f"refarch_{role}":
            problems.append(f"{role}: its URL logs in as {user or 'an unknown secret'}, not "
                            f"refarch_{role}")
        if source in seen:
            problems.append(f"{role}: shares its secret with {seen[source]}")
        seen[source] = role
    if not seen:
        problems.append("no service gets its own database URL")
    return problems


@rule("secrets-readable-only-by-their-task",
      "Each task's execution role reads exactly the secrets that task injects; no task role "
      "reads any secret.")
def _secret_access(plan: Plan) -> list[str]:
    tasks = plan.of_type(t.TASK_DEF)
    if not tasks:
        return ["no task definitions"]
    problems = []
    for task in tasks:
        family = task.plain.get("family")
        injected = {s for c in t.containers_of(task) for s in t.container_secrets(c).values()}
        statements = t.role_statements(plan, task.plain.get("executionRoleArn"))
        readable: set[str] = set()
        for statement in statements:
            if "secretsmanager:GetSecretValue" in t.as_list(statement.get("Action")):
                readable.update(t.as_list(statement.get("Resource")))
        if readable != injected:
            extra = sorted(readable - injected)
            missing = sorted(injected - readable)
            problems.append(f"{family}: execution role reads {extra or 'nothing extra'}"
                            f"{f', cannot read {missing}' if missing else ''}")
        for statement in t.role_statements(plan, task.plain.get("taskRoleArn")):
            if any(str(a).startswith("secretsmanager:") for a in
                   t.as_list(statement.get("Action"))):
                problems.append(f"{family}: the task role can use Secrets Manager")
    return problems


@rule("database-tls-verified",
      "Every database URL verifies the server (sslmode=verify-full with the RDS CA bundle in "
      "the image).")
def _tls_verified(plan: Plan) -> list[str]:
    urls = t.database_urls(plan)
    if not urls:
        return ["no Secrets Manager secret holds a database URL"]
    problems = []
    for arn, url in urls.items():
        query = url.split("?", 1)[1] if "?" in url else ""
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if params.get("sslmode") != "verify-full" or not params.get("sslrootcert"):
            problems.append(f"{arn}: sslmode={params.get('sslmode')}, "
                            f"sslrootcert={params.get('sslrootcert')} (need verify-full and "
                            "the RDS CA bundle)")
    return problems


# --- 3. scheduled repair and alarms -------------------------------------------------------------


@rule("scheduled-repair",
      "An EventBridge Scheduler schedule runs the standalone `reconcile --repair` task on the "
      "stack's cluster, in private subnets, with a role that may run only that task.")
def _scheduled_repair(plan: Plan) -> list[str]:
    reconcile = t.standalone_tasks(plan).get("reconcile")
    if reconcile is None:
        return ["no standalone reconcile task definition"]
    problems = []
    command = t.containers_of(reconcile)[0].get("command")
    if command != ["reconcile", "--repair"]:
        problems.append(f"the reconcile task runs {command}, not reconcile --repair")
    arn = reconcile.outputs.get("arn") or reconcile.plain.get("arn")
    clusters = {c.outputs.get("arn") or c.plain.get("arn") for c in plan.of_type("aws:ecs/cluster:Cluster")}
    tiers = t.subnet_tiers(plan)
    schedules = [s for s in plan.of_type(t.SCHEDULE)
                 if ((s.plain.get("target") or {}).get("ecsParameters") or {})
                 .get("taskDefinitionArn") == arn]
    if not schedules:
        return problems + ["no schedule runs the reconcile task"]
    for schedule in schedules:
        target = schedule.plain.get("target") or {}
        network = (target.get("ecsParameters") or {}).get("networkConfiguration") or {}
        if target.get("arn") not in clusters:
            problems.append(f"{schedule.name}: targets {target.get('arn')}, not the cluster")
        if network.get("assignPublicIp") or any(
                tiers.get(s) != "private" for s in network.get("subnets") or [None]):
            problems.append(f"{schedule.name}: runs outside the private subnets")
        if schedule.plain.get("state", "ENABLED") != "ENABLED":
            problems.append(f"{schedule.name}: disabled")
        for statement in t.role_statements(plan, target.get("roleArn")):
            if "ecs:RunTask" in t.as_list(statement.get("Action")):
                family = str(arn).rsplit(":", 1)[0]
                if any(not str(r).startswith(family + ":") for r in
                       t.as_list(statement.get("Resource"))):
                    problems.append(f"{schedule.name}: its role may run other tasks "
                                    f"({statement.get('Resource')})")
    return problems


@rule("alarm-before-retention",
      "Each queue has an alarm on its oldest message's age that fires before SQS's retention "
      "deletes it (at most 90% of messageRetentionSeconds), notifying the alarm topic.")
def _retention_alarm(plan: Plan) -> list[str]:
    queues = plan.of_type(t.QUEUE)
    if not queues:
        return ["no SQS queue"]
    topics = {topic.outputs.get("arn") or topic.plain.get("arn") for topic in plan.of_type(t.TOPIC)}
    problems = []
    for queue in queues:
        retention = _num(queue.plain.get("messageRetentionSeconds")) or 345_600
        name = queue.outputs.get("name") or queue.plain.get("name")
        ok = False
        for alarm in plan.of_type(t.ALARM):
            inputs = alarm.plain
            threshold = _num(inputs.get("threshold"))
            if (inputs.get("metricName") == "ApproximateAgeOfOldestMessage"
                    and (inputs.get("dimensions") or {}).get("QueueName") == name
                    and threshold is not None and threshold <= 0.9 * retention
                    and set(inputs.get("alarmActions") or []) & topics):
                ok = True
        if not ok:
            problems.append(f"{name}: no alarm before its messages expire ({retention:.0f} s)")
    return problems


@rule("alarms-reach-the-configured-email",
      "When alarmEmail is set, the alarm topic has an e-mail subscription to it.")
def _alarm_email(plan: Plan) -> list[str]:
    email = plan.config.alarm_email
    if not email:
        return []
    topics = {topic.outputs.get("arn") or topic.plain.get("arn") for topic in plan.of_type(t.TOPIC)}
    for subscription in plan.of_type(t.SUBSCRIPTION):
        inputs = subscription.plain
        if (inputs.get("protocol") == "email" and inputs.get("endpoint") == email
                and inputs.get("topic") in topics):
            return []
    return [f"no e-mail subscription sends the alarms to {email}"]


# --- 4. data protection --------------------------------------------------------------------------


@rule("data-protected-unless-disposable",
      "Unless the stack is marked disposable: RDS has deletion protection and a final snapshot, "
      "every secret a recovery window, the Pinecone index and user pool deletion protection, "
      "and the image repository is not force-deleted.")
def _data_protection(plan: Plan) -> list[str]:
    if plan.config.disposable:
        return []
    problems = []
    instances = plan.of_type(t.RDS)
    if not instances:
        problems.append("no RDS instance")
    for db in instances:
        inputs = db.plain
        if inputs.get("deletionProtection") is not True:
            problems.append(f"{db.name}: no deletion protection")
        if inputs.get("skipFinalSnapshot") or not inputs.get("finalSnapshotIdentifier"):
            problems.append(f"{db.name}: deleted without a final snapshot")
    for secret in plan.of_type(t.SECRET):
        window = _num(secret.plain.get("recoveryWindowInDays"))
        if window is not None and window < 7:
            problems.append(f"{secret.name}: recovery window {window:.0f} days (at least 7)")
    for index in plan.of_type(t.INDEX):
        if index.plain.get("deletionProtection") != "enabled":
            problems.append(f"{index.name}: Pinecone deletion protection off")
    for pool in plan.of_type(t.USER_POOL):
        if pool.plain.get("deletionProtection") != "ACTIVE":
            problems.append(f"{pool.name}: user pool deletion protection off")
    for repo in plan.of_type(t.REPOSITORY):
        if repo.plain.get("forceDelete"):
            problems.append(f"{repo.name}: force-deleted with its images")
    return problems


# --- 7. supply chain ---------------------------------------------------------------------------


def _image_findings(plan: Plan) -> supply_chain.Findings | None:
    """The supply-chain findings of what the services run: the Dockerfile the image is built
    from (and its lock files), or the prebuilt ``imageUri``. None when there is no image."""
    if not plan.of_type(t.TASK_DEF):
        return None
    images = plan.of_type(t.IMAGE)
    if images:
        findings = supply_chain.Findings()
        for image in images:
            location = (image.plain.get("dockerfile") or {}).get("location")
            found = supply_chain.dockerfile_findings(Path(str(location)))
            findings.unpinned += found.unpinned
            findings.placeholders += found.placeholders
        return findings
    if plan.config.image_uri:
        return supply_chain.image_uri_findings(plan.config.image_uri)
    return None


@rule("image-build-pinned",
      "The image is built only from pinned inputs: base images and the BuildKit frontend by "
      "digest, downloaded files by checksum, Python packages from lock files with hashes "
      "(pip --require-hashes); a prebuilt imageUri is given by digest.")
def _image_pinned(plan: Plan) -> list[str]:
    findings = _image_findings(plan)
    if findings is None:
        return ["no task runs an image"]
    return findings.unpinned


@rule("image-pins-filled-in",
      "No pin is a placeholder (64 zeros) for a digest or hash that could not be known offline: "
      "a warning in the plan, a refused deploy.", level=ADVISORY, deploy_level=MANDATORY)
def _image_placeholders(plan: Plan) -> list[str]:
    findings = _image_findings(plan)
    if findings is None:
        return ["no task runs an image"]
    return findings.placeholders
