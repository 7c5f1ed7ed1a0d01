"""Finding the Pulumi program (``infra/`` beside the package) and configuring it from Settings.

``infra`` is not part of the installed ``refarch`` distribution: it lives at the root of the
repository, next to ``refarch/``. :func:`load_infra` imports it from there, so the driver, the
plan and the notebooks work from any working directory of a clone.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from refarch.errors import DeployError
from refarch.settings import Settings

if TYPE_CHECKING:
    from infra.config import StackConfig

#: Where the Pulumi program lives: ``<repo>/infra`` (this file is ``<repo>/refarch/deploy``).
INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"


def load_infra(module: str = "program") -> ModuleType:
    """Import ``infra.<module>``, adding the repository root to ``sys.path`` when needed.

    Raises :class:`~refarch.errors.DeployError` when refarch runs without its ``infra/``
    directory (an installed wheel rather than a clone of the repository).
    """
    if not (INFRA_DIR / "Pulumi.yaml").is_file():
        raise DeployError(
            f"the Pulumi program is not at {INFRA_DIR}: deploying needs a clone of the refarch "
            "repository (pip install -e . from the clone), not an installed wheel"
        )
    root = str(INFRA_DIR.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"infra.{module}")


def stack_config(
    settings: Settings,
    stack: str | None = None,
    values: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> StackConfig:
    """Build the program's StackConfig from refarch settings.

    Precedence, lowest first: StackConfig defaults, ``values`` (the stack's saved
    ``refarch:*`` config), what the settings say (region, index name, log level, image,
    stack), then ``overrides`` (``refarch deploy up --set key=value``). Keys are the camelCase
    config names; an unknown key is an error naming it.
    """
    config_module = load_infra("config")
    known = {config_module.camel(f) for f in config_module.StackConfig.__dataclass_fields__}
    for key in list(values or {}) + list(overrides or {}):
        if key not in known:
            raise DeployError(
                f"unknown stack setting {key!r}; known settings: {', '.join(sorted(known))}"
            )
    from_settings = {
        "awsRegion": settings.aws_region,
        "indexName": settings.index_name,
        "logLevel": settings.log_level,
        # The services read these too; the queue must be created to match them.
        "queueMaxReceiveCount": str(settings.queue_max_receives),
        "queueVisibilityTimeoutSeconds": str(settings.queue_visibility_timeout),
    }
    if settings.deploy_image_uri:
        from_settings["imageUri"] = settings.deploy_image_uri
    merged = {**(values or {}), **from_settings, **(overrides or {})}
    config: StackConfig = config_module.StackConfig.from_values(
        merged.get, stack=stack or settings.deploy_stack
    )
    return config
