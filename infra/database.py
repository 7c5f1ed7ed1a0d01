"""Database: RDS PostgreSQL in the private subnets, encrypted, backed up, never public.

The master password is generated (``random.RandomPassword``), handed to RDS as a secret and
kept in Secrets Manager inside a full ``DATABASE_URL`` secret, which ECS injects into the
containers that need it; no plaintext copy exists in the program, the task definitions or the
state (Pulumi encrypts secret Outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

DB_NAME = "refarch"
DB_USER = "refarch"
DB_PORT = 5432


@dataclass(frozen=True)
class DatabaseArgs:
    """Inputs of :class:`Database`."""

    prefix: str
    private_subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    instance_class: str
    engine_version: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    backup_retention_days: int
    multi_az: bool
    protect_data: bool
    tags: dict[str, str]


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL plus the ``DATABASE_URL`` secret."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    endpoint: pulumi.Output[str]
    url_secret_arn: pulumi.Output[str]
    identifier: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("refarch:infra:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Letters and digits only: RDS forbids / @ " and space, and a URL needs no escaping.
        password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=child
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=args.private_subnet_ids,
            description=f"{args.prefix} database: private subnets only",
            tags=args.tags,
            opts=child,
        )
        instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=f"{args.prefix}-postgres",
            engine="postgres",
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DB_NAME,
            username=DB_USER,
            password=password.result,
            port=DB_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[args.security_group_id],
            publicly_accessible=False,
            multi_az=args.multi_az,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            deletion_protection=args.protect_data,
            skip_final_snapshot=not args.protect_data,
            final_snapshot_identifier=f"{args.prefix}-postgres-final" if args.protect_data else None,
            apply_immediately=True,
            tags=args.tags,
            opts=child,
        )
        url_secret = aws.secretsmanager.Secret(
            f"{name}-url",
            description=f"{args.prefix}: DATABASE_URL for the services (master credentials)",
            recovery_window_in_days=30 if args.protect_data else 0,
            tags=args.tags,
            opts=child,
        )
        url = pulumi.Output.secret(
            pulumi.Output.format(
                "postgresql://{0}:{1}@{2}:{3}/{4}?sslmode=require",
                DB_USER,
                password.result,
                instance.address,
                instance.port,
                DB_NAME,
            )
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-url", secret_id=url_secret.id, secret_string=url, opts=child
        )

        self.address = instance.address
        self.port = instance.port
        self.endpoint = pulumi.Output.format("{0}:{1}", instance.address, instance.port)
        self.url_secret_arn = url_secret.arn
        self.identifier = instance.identifier
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "endpoint": self.endpoint,
                "url_secret_arn": self.url_secret_arn,
                "identifier": self.identifier,
            }
        )
