"""The container image's entry point: one image, one process per ECS task.

The Dockerfile's ``ENTRYPOINT`` is ``python -m refarch.cli.container`` and each ECS task passes
the role it plays as the command, e.g. ``["indexer", "--workers", "2"]``. The role is looked
up in :data:`ENTRYPOINTS` and the process *replaces itself* with the real command (``exec``),
so the service receives ECS's SIGTERM directly. Extra arguments are appended. Anything that
is not a role (``refarch status``, ``bash``) is run as given, for one-off tasks.

The Pulumi program (``infra/services.py``) builds the task commands from the same table, and
``tests/unit/test_container_image.py`` checks every entry against the real CLI parser.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from refarch.settings import Settings

#: Port the Streamlit app listens on inside the container (the ALB's target port).
APP_PORT: int = Settings.app_port
#: Streamlit's own health endpoint, used by the ALB target group's health check.
APP_HEALTH_PATH: str = "/_stcore/health"

#: Role name -> the command it runs. Keys are the ECS task commands' first word.
#: ``refarch app`` runs ``streamlit run app/streamlit_app.py`` with hardened server flags.
ENTRYPOINTS: dict[str, tuple[str, ...]] = {
    "app": ("refarch", "app", "--host", "0.0.0.0", "--port", str(APP_PORT)),
    "relay": ("refarch", "relay"),
    "indexer": ("refarch", "indexer"),
    "migrate": ("refarch", "db", "migrate"),
    # The scheduled repair, and a service task's wait for the migration (``db wait``).
    "reconcile": ("refarch", "reconcile"),
    "db": ("refarch", "db"),
}


def resolve(argv: Sequence[str]) -> list[str]:
    """Turn the container's arguments into the command to run.

    ``["indexer", "--workers", "2"]`` becomes ``["refarch", "indexer", "--workers", "2"]``;
    arguments that do not start with a role are returned unchanged. Raises ``ValueError``
    on an empty command, naming the roles.
    """
    if not argv:
        raise ValueError(f"no command given; use one of: {', '.join(ENTRYPOINTS)}")
    role, *extra = argv
    if role in ENTRYPOINTS:
        return [*ENTRYPOINTS[role], *extra]
    return list(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Replace this process with the resolved command (never returns on success)."""
    try:
        command = resolve(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"refarch entrypoint: {exc}", file=sys.stderr)
        return 2
    try:
        os.execvp(command[0], command)
    except FileNotFoundError:
        print(f"refarch entrypoint: command not found: {command[0]}", file=sys.stderr)
        return 127
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
