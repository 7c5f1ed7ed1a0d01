"""The local stack (``refarch up``) as a user drives it: the CLI in a throwaway REFARCH_HOME.

:func:`stack_env` builds an environment that reaches only its own stack (free ports, nothing
inherited that points elsewhere); :func:`run_refarch` runs the CLI in it; :func:`log_tails`
shows what the stack's processes wrote, for failure messages; :class:`Stack` is a started one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refarch.settings import Settings
from tests.support.paths import ROOT
from tests.support.ports import free_port

#: Variables kept from the calling environment although they start with REFARCH_: which user
#: runs Postgres is about the machine, not about a stack.
_KEPT = ("REFARCH_PG_USER",)
#: Variables that point elsewhere without the REFARCH_ prefix.
_DROPPED = ("DATABASE_URL", "PINECONE_API_KEY")


def stack_env(home: Path, **settings: str) -> dict[str, str]:
    """This process's environment for a stack in ``home`` on free ports.

    Nothing inherited may point the stack elsewhere: every ``REFARCH_*`` variable (but
    ``REFARCH_PG_USER``), ``DATABASE_URL`` and ``PINECONE_API_KEY`` are dropped. Postgres, the
    index server and the app get free ports; ``settings`` (``REFARCH_...="value"``) come last.
    """
    inherited = {
        key: value for key, value in os.environ.items()
        if not (key.startswith("REFARCH_") and key not in _KEPT) and key not in _DROPPED
    }
    return {
        **inherited,
        "REFARCH_HOME": str(home),
        "REFARCH_PG_PORT": str(free_port()),
        "REFARCH_INDEX_PORT": str(free_port()),
        "REFARCH_APP_PORT": str(free_port()),
        **settings,
    }


def run_refarch(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``refarch ARGS`` (this interpreter's ``-m refarch.cli``) from the repository's root."""
    return subprocess.run(
        [sys.executable, "-m", "refarch.cli", *args], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=timeout,
    )


def stack_status(env: dict[str, str]) -> dict[str, Any]:
    """``refarch status --json``, parsed; fails the test if the command fails."""
    result = run_refarch(env, "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def log_tails(home: Path, chars: int = 2000) -> str:
    """The last ``chars`` characters of every log in ``home/logs``, each under its name."""
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}"
        for log in sorted((home / "logs").glob("*.log"))
    )


@dataclass(frozen=True)
class Stack:
    """A running local stack: its environment, settings and `refarch status --json`."""

    env: dict[str, str]
    settings: Settings
    status: dict[str, Any]

    def refarch(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the refarch CLI against this stack."""
        return run_refarch(self.env, *args, timeout=timeout)
