"""Vector index: a Pinecone serverless index sized for refarch's embedding model.

The dimension comes from :data:`refarch.model_spec.DIMENSION`, never from config, so the index
always matches the vectors the indexer writes. The API key reaches Pinecone's provider as a
secret and the services through a Secrets Manager secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import pinecone_pulumi as pinecone
import pulumi
import pulumi_aws as aws

from refarch.model_spec import DIMENSION, METRIC


@dataclass(frozen=True)
class VectorIndexArgs:
    """Inputs of :class:`VectorIndex`."""

    prefix: str
    index_name: str
    cloud: str
    region: str
    api_key: pulumi.Input[str]
    protect_data: bool
    recovery_window_days: int
    tags: dict[str, str]


class VectorIndex(pulumi.ComponentResource):
    """Pinecone serverless index + the Secrets Manager copy of the API key."""

    name: pulumi.Output[str]
    host: pulumi.Output[str]
    api_key_secret_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: VectorIndexArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("refarch:infra:VectorIndex", name, None, opts)
        secret_key = pulumi.Output.secret(args.api_key)
        provider = pinecone.Provider(
            f"{name}-provider", api_key=secret_key, opts=pulumi.ResourceOptions(parent=self)
        )
        index = pinecone.Index(
            f"{name}-index",
            name=args.index_name,
            dimension=DIMENSION,
            metric=METRIC,
            vector_type="dense",
            spec=pinecone.IndexSpecArgs(
                serverless=pinecone.IndexSpecServerlessArgs(cloud=args.cloud, region=args.region)
            ),
            deletion_protection="enabled" if args.protect_data else "disabled",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        child = pulumi.ResourceOptions(parent=self)
        key_secret = aws.secretsmanager.Secret(
            f"{name}-api-key",
            description=f"{args.prefix}: PINECONE_API_KEY for the services",
            recovery_window_in_days=args.recovery_window_days,
            tags=args.tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-api-key", secret_id=key_secret.id, secret_string=secret_key, opts=child
        )

        self.name = index.name
        self.host = index.host
        self.api_key_secret_arn = key_secret.arn
        self.register_outputs(
            {"name": self.name, "host": self.host, "api_key_secret_arn": self.api_key_secret_arn}
        )
