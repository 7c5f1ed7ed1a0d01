"""A Mermaid diagram of the architecture, generated from the plan's actual resources.

Every node stands for resources the program declared and every edge for wiring found in their
inputs (security-group rules, listener -> target group -> service, IAM actions on the queues,
the redrive policy, injected secrets, alarm actions). Remove a wire from the program and the
arrow disappears from the diagram.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from refarch.deploy import topology as t

if TYPE_CHECKING:
    from refarch.deploy.model import Plan


def _label(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def mermaid(plan: Plan) -> str:
    """Render ``plan`` as a Mermaid ``flowchart LR``."""
    nodes: dict[str, str] = {}
    edges: list[str] = []
    groups: dict[str, list[str]] = {"public": [], "private": []}

    def node(key: str, text: str, shape: str = "rect", group: str | None = None) -> str:
        open_, close = {"rect": ("[", "]"), "db": ("[(", ")]"), "queue": ("[[", "]]"),
                        "circle": ("((", "))"), "round": ("(", ")")}[shape]
        nodes[key] = f"{key}{open_}{_label(text)}{close}"
        if group:
            groups[group].append(key)
        return key

    def edge(a: str, b: str, text: str = "", dashed: bool = False) -> None:
        arrow = "-.->" if dashed else "-->"
        edges.append(f"{a} {arrow}|{_label(text)}| {b}" if text else f"{a} {arrow} {b}")

    tiers = t.subnet_tiers(plan)
    sg_roles = t.security_group_roles(plan)
    views = dict(sorted(t.services(plan).items(), key=lambda kv: _role_order(kv[0])))
    bounds = {
        target.plain.get("resourceId", "").rsplit("/", 1)[-1]: (
            int(target.plain.get("minCapacity", 0)), int(target.plain.get("maxCapacity", 0)))
        for target in plan.of_type(t.SCALING_TARGET)
    }

    # Nodes ---------------------------------------------------------------------------------
    node("internet", "Internet", "circle")
    for alb in plan.of_type(t.ALB):
        subnet_tier = {tiers.get(s) for s in alb.plain.get("subnets") or []}
        node("alb", f"ALB {alb.plain.get('name', alb.name)}", group=_group(subnet_tier))
    for role, view in views.items():
        inputs = view.service.plain
        low, high = bounds.get(str(inputs.get("name")), (None, None))
        desired = int(inputs.get("desiredCount", 0))
        count = (f"{low}-{high} tasks" if low is not None
                 else f"{desired} task" + ("s" if desired != 1 else ""))
        node(role, f"ECS {role} ({count})", "round",
             group=_group({tiers.get(s) for s in view.subnet_ids}))
    for db in plan.of_type(t.RDS):
        inputs = db.plain
        node("db", f"RDS PostgreSQL {inputs.get('engineVersion')} {inputs.get('instanceClass')}",
             "db", group="private")
    queue, dlq = t.queues(plan)
    if queue:
        node("queue", f"SQS {queue.plain.get('name', queue.name)}", "queue")
    if dlq:
        node("dlq", f"SQS DLQ {dlq.plain.get('name', dlq.name)}", "queue")
    for index in plan.of_type(t.INDEX):
        inputs = index.plain
        node("index", f"Pinecone {inputs.get('name')} ({int(inputs.get('dimension', 0))}-d "
             f"{inputs.get('metric')})", "db")
    secrets = plan.of_type(t.SECRET)
    if secrets:
        node("secrets", f"Secrets Manager ({len(secrets)} secrets)")
    for repo in plan.of_type(t.REPOSITORY):
        node("ecr", f"ECR {repo.plain.get('name', repo.name)}")
    topics = plan.of_type(t.TOPIC)
    alarms = plan.of_type(t.ALARM)
    if topics:
        node("alarms", f"SNS alarms topic ({len(alarms)} alarms)")
    if plan.of_type(t.DASHBOARD):
        node("dashboard", "CloudWatch dashboard")
    pools = plan.of_type(t.USER_POOL)
    if pools:
        node("signin", f"Cognito {pools[0].plain.get('name', pools[0].name)} (hosted UI)")
    standalone = t.standalone_tasks(plan)
    for role in standalone:
        node(role, f"ECS task {role}", "round", group="private")
    schedules = plan.of_type(t.SCHEDULE)
    if schedules:
        node("scheduler", "EventBridge Scheduler")

    # Edges ---------------------------------------------------------------------------------
    for rule in t.ingress_rules(plan):
        inputs = rule.plain
        target = sg_roles.get(inputs.get("securityGroupId", ""))
        port = _port(inputs)
        source_sg = inputs.get("referencedSecurityGroupId")
        cidr = inputs.get("cidrIpv4") or inputs.get("cidrIpv6")
        target_key = "db" if target == "database" else target
        if target_key not in nodes:
            continue
        if source_sg:
            source = sg_roles.get(source_sg)
            if source in nodes:
                edge(source, target_key, port)
        elif cidr:
            edge("internet", target_key, f"{port} from {cidr}")

    for listener in plan.of_type(t.LISTENER):
        kinds = [a.get("type") for a in listener.plain.get("defaultActions") or []]
        if "authenticate-cognito" in kinds and "signin" in nodes:
            edge("alb", "signin", f":{int(listener.plain.get('port', 0))} sign-in first",
                 dashed=True)
        elif "authenticate-oidc" in kinds:
            node("signin", "OIDC identity provider")
            edge("alb", "signin", f":{int(listener.plain.get('port', 0))} sign-in first",
                 dashed=True)
    for schedule in schedules:
        ecs = (schedule.plain.get("target") or {}).get("ecsParameters") or {}
        for role, task in standalone.items():
            if ecs.get("taskDefinitionArn") == task.outputs.get("arn"):
                command = " ".join(t.containers_of(task)[0].get("command") or [])
                edge("scheduler", role, f"{command}, {schedule.plain.get('scheduleExpression')}")
    for role, task in standalone.items():
        if any(u in t.database_urls(plan) for c in t.containers_of(task)
               for u in t.container_secrets(c).values()):
            edge(role, "db", "master URL", dashed=True)

    if queue:
        for role, view in views.items():
            if view.task_definition is None:
                continue
            task_role = view.task_definition.plain.get("taskRoleArn", "")
            statements = t.policy_statements(plan, task_role)
            on_queue = t.actions_on(statements, queue.outputs.get("arn", ""))
            if "sqs:SendMessage" in on_queue:
                edge(role, "queue", "send")
            if "sqs:ReceiveMessage" in on_queue:
                edge("queue", role, "receive")
        redrive = t.redrive(queue)
        if dlq and redrive:
            edge("queue", "dlq", f"after {int(redrive.get('maxReceiveCount', 0))} receives")

    index_names = {i.plain.get("name") for i in plan.of_type(t.INDEX)}
    secret_arns = {s.outputs.get("arn") for s in secrets}
    repo_urls = [r.outputs.get("repositoryUrl", "") for r in plan.of_type(t.REPOSITORY)]
    for role, view in views.items():
        main = view.main_container or {}
        env = t.environment(main)
        injected = t.container_secrets(main)
        if env.get("REFARCH_INDEX_NAME") in index_names and "PINECONE_API_KEY" in injected:
            edge(role, "index", "query / upsert")
        if "secrets" in nodes and set(injected.values()) & secret_arns:
            edge("secrets", role, ", ".join(sorted(injected)), dashed=True)
        image = str(main.get("image", ""))
        if "ecr" in nodes and any(url and image.startswith(url) for url in repo_urls):
            edge("ecr", role, "image", dashed=True)

    if "alarms" in nodes:
        topic_arns = {topic.outputs.get("arn") for topic in topics}
        dlq_name = dlq.outputs.get("name") if dlq else None
        for alarm in alarms:
            inputs = alarm.plain
            if not set(inputs.get("alarmActions") or []) & topic_arns:
                continue
            if dlq_name and (inputs.get("dimensions") or {}).get("QueueName") == dlq_name:
                edge("dlq", "alarms", "depth > 0", dashed=True)
    for policy in plan.of_type(t.SCALING_POLICY):
        config = policy.plain.get("targetTrackingScalingPolicyConfiguration") or {}
        service_name = str(policy.plain.get("resourceId", "")).rsplit("/", 1)[-1]
        scaled = next((r for r, v in views.items() if v.service.plain.get("name") == service_name),
                      None)
        if scaled is None:
            continue
        node("scaling", "Application Auto Scaling")
        metrics = (config.get("customizedMetricSpecification") or {}).get("metrics") or []
        if any("ApproximateNumberOfMessagesVisible" in str(m) for m in metrics) and queue:
            edge("queue", "scaling", "backlog metric", dashed=True)
            edge("scaling", scaled, "backlog per task", dashed=True)
        predefined = (config.get("predefinedMetricSpecification") or {}).get(
            "predefinedMetricType")
        if predefined:
            edge("scaling", scaled, _humanize(predefined), dashed=True)

    # Layout ----------------------------------------------------------------------------------
    lines = ["flowchart LR"]
    vpc = plan.of_type("aws:ec2/vpc:Vpc")
    grouped = {key for keys in groups.values() for key in keys}
    if vpc and grouped:
        lines.append(f"  subgraph vpc[{_label('VPC ' + str(vpc[0].plain.get('cidrBlock')))}]")
        for tier in ("public", "private"):
            if groups[tier]:
                subnets = sum(1 for v in tiers.values() if v == tier)
                lines.append(f"    subgraph {tier}[{_label(f'{tier} subnets x{subnets}')}]")
                lines.extend(f"      {nodes[key]}" for key in groups[tier])
                lines.append("    end")
        lines.append("  end")
    lines.extend(f"  {text}" for key, text in nodes.items() if key not in grouped)
    lines.extend(f"  {text}" for text in dict.fromkeys(edges))
    return "\n".join(lines)


def _group(tiers: set[str | None]) -> str | None:
    return next(iter(tiers)) if len(tiers) == 1 and None not in tiers and \
        next(iter(tiers)) in ("public", "private") else None


def _role_order(role: str) -> tuple[int, str]:
    order = t.SERVICE_ROLES
    return (order.index(role) if role in order else len(order), role)


def _port(inputs: dict[str, Any]) -> str:
    low, high = inputs.get("fromPort"), inputs.get("toPort")
    if low is None:
        return "all ports"
    return f":{int(low)}" if high is None or low == high else f":{int(low)}-{int(high)}"


def _humanize(metric_type: str) -> str:
    return re.sub(r"^ECSService", "", metric_type).replace("Average", "average ").replace(
        "Utilization", " utilization").strip().lower()
