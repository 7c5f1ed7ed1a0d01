"""Security groups, one per role, with every rule a separate, named resource.

The rules, which the infra tests enforce:

* the ALB takes 80 and 443 (80 only with ``unsafeNoTls``) from ``albIngressCidrs`` (the
  internet by default) and may only talk to the app's port, and to the identity provider on 443
  when it signs users in;
* the app takes its port only from the ALB;
* the relay, the indexer and the one-off tasks (migration, scheduled repair) take no ingress;
* Postgres takes 5432 only from the app, the relay, the indexer (which re-reads the rows
  it indexes; ``indexerReadsDatabase=false`` removes it) and the tasks, never from a CIDR;
* no other ingress from anywhere.

Egress of the services is open (Pinecone, SQS, Secrets Manager and ECR are public endpoints
reached through the NAT); the database has no egress.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

POSTGRES_PORT = 5432


@dataclass(frozen=True)
class SecurityArgs:
    """Inputs of :class:`SecurityGroups`."""

    prefix: str
    vpc_id: pulumi.Input[str]
    app_port: int
    alb_ingress_cidrs: tuple[str, ...]
    https: bool
    indexer_reads_database: bool
    tags: dict[str, str]
    #: The ALB authenticates: it calls the identity provider's token endpoint on 443.
    sign_in: bool = False


class SecurityGroups(pulumi.ComponentResource):
    """The ALB, app, relay, indexer and database security groups and their rules."""

    alb_sg_id: pulumi.Output[str]
    app_sg_id: pulumi.Output[str]
    relay_sg_id: pulumi.Output[str]
    indexer_sg_id: pulumi.Output[str]
    database_sg_id: pulumi.Output[str]
    tasks_sg_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("refarch:infra:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def group(role: str, description: str) -> aws.ec2.SecurityGroup:
            # No inline ingress/egress: every rule below is its own resource, so each one
            # is visible (and testable) on its own and none can hide in a list.
            return aws.ec2.SecurityGroup(
                f"{name}-{role}",
                vpc_id=args.vpc_id,
                description=description,
                tags={**args.tags, "Name": f"{args.prefix}-{role}", "role": role},
                opts=child,
            )

        def ingress_from_cidr(label: str, sg: aws.ec2.SecurityGroup, cidr: str, port: int) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{label}",
                security_group_id=sg.id,
                cidr_ipv4=cidr if ":" not in cidr else None,
                cidr_ipv6=cidr if ":" in cidr else None,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{label} on {port}",
                tags=args.tags,
                opts=child,
            )

        def ingress_from_group(
            label: str, sg: aws.ec2.SecurityGroup, source: aws.ec2.SecurityGroup, port: int
        ) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{label}",
                security_group_id=sg.id,
                referenced_security_group_id=source.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{label} on {port}",
                tags=args.tags,
                opts=child,
            )

        def egress_anywhere(label: str, sg: aws.ec2.SecurityGroup) -> None:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{label}-egress",
                security_group_id=sg.id,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="-1",
                description=f"{label}: outbound to AWS APIs and Pinecone via NAT",
                tags=args.tags,
                opts=child,
            )

        alb = group("alb", "Load balancer: HTTP(S) from the allowed CIDRs")
        app = group("app", "Streamlit app: only from the load balancer")
        relay = group("relay", "Outbox relay: no ingress")
        indexer = group("indexer", "Indexer: no ingress")
        database = group("database", "Postgres: only from the services that use it")
        tasks = group("tasks", "Migration and scheduled repair tasks: no ingress")

        ports = [80, 443] if args.https else [80]
        for n, cidr in enumerate(args.alb_ingress_cidrs):
            for port in ports:
                ingress_from_cidr(f"alb-in-{port}-{n}", alb, cidr, port)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-app",
            security_group_id=alb.id,
            referenced_security_group_id=app.id,
            ip_protocol="tcp",
            from_port=args.app_port,
            to_port=args.app_port,
            description="load balancer to app tasks",
            tags=args.tags,
            opts=child,
        )
        ingress_from_group("app-from-alb", app, alb, args.app_port)
        if args.sign_in:
            # The authenticate action: the ALB exchanges the code at the IdP (Cognito, OIDC).
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-alb-to-idp",
                security_group_id=alb.id,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="load balancer to the identity provider's endpoints (sign-in)",
                tags=args.tags,
                opts=child,
            )

        database_clients = [("app", app), ("relay", relay), ("tasks", tasks)]
        if args.indexer_reads_database:
            database_clients.append(("indexer", indexer))
        for role, source in database_clients:
            ingress_from_group(f"database-from-{role}", database, source, POSTGRES_PORT)

        for role, sg in (("app", app), ("relay", relay), ("indexer", indexer), ("tasks", tasks)):
            egress_anywhere(role, sg)

        self.alb_sg_id = alb.id
        self.app_sg_id = app.id
        self.relay_sg_id = relay.id
        self.indexer_sg_id = indexer.id
        self.database_sg_id = database.id
        self.tasks_sg_id = tasks.id
        self.register_outputs(
            {
                "alb_sg_id": self.alb_sg_id,
                "app_sg_id": self.app_sg_id,
                "relay_sg_id": self.relay_sg_id,
                "indexer_sg_id": self.indexer_sg_id,
                "database_sg_id": self.database_sg_id,
                "tasks_sg_id": self.tasks_sg_id,
            }
        )
