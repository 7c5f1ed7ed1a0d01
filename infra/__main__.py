"""Entry point of ``pulumi up`` run from this directory: read Pulumi config, build the stack.

This is the only place that reads ``pulumi.Config``. The Automation API driver
(``refarch.deploy``) builds the same :class:`~infra.config.StackConfig` from refarch's settings
and runs :func:`infra.program.build_stack` inline.

    cd infra
    pulumi stack init dev
    pulumi config set aws:region us-east-1        # optional, default us-east-1
    pulumi config set --secret pinecone:apiKey    # required
    pulumi config set refarch:domainName search.example.org   # required (TLS, sign-in)
    pulumi config set refarch:appMaxTasks 6       # any StackConfig field, camelCase
    pulumi up
"""

import sys
from pathlib import Path

# Pulumi runs this file as a script; make the repository root importable so that `infra` is
# a package and `refarch` resolves even without an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pulumi

from infra.config import NAMESPACE, StackConfig
from infra.program import build_stack
from refarch.errors import ConfigError

refarch_config = pulumi.Config(NAMESPACE)
config = StackConfig.from_values(
    refarch_config.get,
    stack=pulumi.get_stack(),
    aws_region=pulumi.Config("aws").get("region") or StackConfig.aws_region,
)
if config.uses_placeholder_domain:
    # Only the offline plan may use the placeholder: ACM could never validate it.
    raise ConfigError("refarch:domainName is not set: the app needs a DNS name for its "
                      "certificate and sign-in (pulumi config set refarch:domainName "
                      "search.example.org), or refarch:unsafeNoTls=true for a workshop")
build_stack(config, pulumi.Config("pinecone").require_secret("apiKey"),
            refarch_config.get_secret("oidcClientSecret"))
