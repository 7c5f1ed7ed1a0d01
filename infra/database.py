"""Database: RDS PostgreSQL in the private subnets, encrypted, backed up, never public.

Credentials, one secret each, all generated (``random.RandomPassword``) and kept in Secrets
Manager as full libpq URLs; no plaintext copy exists in the program, the task definitions or
the state (Pulumi encrypts secret Outputs):

* the master user's ``DATABASE_URL``: only the migration task gets it (and the scheduled
  repair, which records its runs as the owner);
* one URL per service role (``refarch_app``, ``refarch_relay``, ``refarch_indexer``, created by
  migration 0002), injected as that service's ``REFARCH_<ROLE>_DATABASE_URL``. The migration
  task sets each role's password from these after migrating (``refarch db migrate
  --role-passwords``), so a role can log in only once the schema is there.

Every URL says ``sslmode=verify-full`` with the RDS CA bundle the image carries
(:data:`RDS_CA_BUNDLE`): the client checks the server's certificate and host name.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from refarch.bootstrap import ROLE_NAMES

DB_NAME = "refarch"
DB_USER = "refarch"
DB_PORT = 5432
#: Where the Dockerfile puts Amazon RDS's CA bundle (global-bundle.pem, checksum-pinned).
RDS_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
#: The TLS part of every database URL of the stack.
SSL_PARAMS = f"sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE}"


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
    recovery_window_days: int
    tags: dict[str, str]
    #: The service roles that get credentials (``app``, ``relay``, ``indexer``).
    roles: tuple[str, ...] = ("app", "relay", "indexer")


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL plus the ``DATABASE_URL`` secret."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    endpoint: pulumi.Output[str]
    url_secret_arn: pulumi.Output[str]
    role_url_secret_arns: dict[str, pulumi.Output[str]]
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
            # The server's certificate must match what verify-full checks against.
            ca_cert_identifier="rds-ca-rsa2048-g1",
            apply_immediately=True,
            tags=args.tags,
            opts=child,
        )
        def url_secret(label: str, description: str, user: str,
                       secret_password: pulumi.Output[str]) -> aws.secretsmanager.Secret:
            secret = aws.secretsmanager.Secret(
                f"{name}-{label}",
                name_prefix=f"{args.prefix}/database/{label}-",
                description=f"{args.prefix}: {description}",
                recovery_window_in_days=args.recovery_window_days,
                tags=args.tags,
                opts=child,
            )
            url = pulumi.Output.secret(pulumi.Output.format(
                "postgresql://{0}:{1}@{2}:{3}/{4}?{5}", user, secret_password, instance.address,
                instance.port, DB_NAME, SSL_PARAMS,
            ))
            aws.secretsmanager.SecretVersion(
                f"{name}-{label}", secret_id=secret.id, secret_string=url, opts=child
            )
            return secret

        master = url_secret("url", "DATABASE_URL, master credentials: the migration task only",
                            DB_USER, password.result)
        role_secrets: dict[str, aws.secretsmanager.Secret] = {}
        for role in args.roles:
            role_password = random.RandomPassword(
                f"{name}-{role}-password", length=32, special=False, opts=child
            )
            role_secrets[role] = url_secret(
                f"{role}-url", f"REFARCH_{role.upper()}_DATABASE_URL of the {role} service "
                f"(role {ROLE_NAMES[role]})", ROLE_NAMES[role], role_password.result,
            )

        self.address = instance.address
        self.port = instance.port
        self.endpoint = pulumi.Output.format("{0}:{1}", instance.address, instance.port)
        self.url_secret_arn = master.arn
        self.role_url_secret_arns = {role: s.arn for role, s in role_secrets.items()}
        self.identifier = instance.identifier
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "endpoint": self.endpoint,
                "url_secret_arn": self.url_secret_arn,
                "role_url_secret_arns": self.role_url_secret_arns,
                "identifier": self.identifier,
            }
        )
