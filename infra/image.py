"""Image: one container image for every service, in a private ECR repository.

By default the image is built from the repository's ``Dockerfile`` with BuildKit
(``pulumi-docker-build``, needs a local Docker daemon) and pushed to ECR; the services run it
by digest, so a new build rolls every service. With ``refarch:imageUri`` set, that prebuilt
image is used as is and nothing is built (the repository is still created for later pushes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

#: The repository root: the Docker build context holding the Dockerfile.
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ImageArgs:
    """Inputs of :class:`ServiceImage`."""

    prefix: str
    image_uri: str | None
    platform: str
    protect_data: bool
    tags: dict[str, str]
    context: str = str(REPO_ROOT)


class ServiceImage(pulumi.ComponentResource):
    """ECR repository (scanned, encrypted, pruned) and the image the services run."""

    repository_url: pulumi.Output[str]
    image_ref: pulumi.Output[str]

    def __init__(self, name: str, args: ImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("refarch:infra:ServiceImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        repository = aws.ecr.Repository(
            f"{name}-repo",
            name=f"{args.prefix}/services",
            image_tag_mutability="MUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            force_delete=not args.protect_data,
            tags=args.tags,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-keep-recent",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "keep the 10 most recent images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 10,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )

        if args.image_uri:
            image_ref: pulumi.Output[str] = pulumi.Output.from_input(args.image_uri)
        else:
            token = aws.ecr.get_authorization_token_output(
                registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            image = docker_build.Image(
                f"{name}-image",
                context=docker_build.BuildContextArgs(location=args.context),
                dockerfile=docker_build.DockerfileArgs(
                    location=str(Path(args.context) / "Dockerfile")
                ),
                platforms=[docker_build.Platform(args.platform)],
                tags=[repository.repository_url.apply(lambda url: f"{url}:latest")],
                push=True,
                # A preview must not need Docker; the build happens on `up`.
                build_on_preview=False,
                registries=[
                    docker_build.RegistryArgs(
                        address=repository.repository_url.apply(lambda url: url.split("/")[0]),
                        username=token.user_name,
                        password=pulumi.Output.secret(token.password),
                    )
                ],
                opts=child,
            )
            image_ref = image.ref

        self.repository_url = repository.repository_url
        self.image_ref = image_ref
        self.register_outputs(
            {"repository_url": self.repository_url, "image_ref": self.image_ref}
        )
