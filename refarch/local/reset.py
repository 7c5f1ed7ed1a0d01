"""``refarch reset``: the local state back to a clean start, saying first what goes.

What goes: the local Postgres cluster (data, socket directory, log, password, lock; also when
root placed it under /var/lib/refarch), the local index's data, the stack's logs and state.
What stays: the ONNX model export (``models/``: derived from the packaged weights, costly to
make again, holds no data) and ``deploy/`` (the Pulumi state of real cloud resources: deleting
it would orphan them). A server named by ``DATABASE_URL`` is never touched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from refarch.settings import Settings

#: What reset keeps under REFARCH_HOME, and why (shown to the user).
KEPT = {"models": "the ONNX model export (no data; costly to make again)",
        "deploy": "the Pulumi state of cloud resources (deleting it would orphan them)"}


@dataclass(frozen=True)
class ResetPlan:
    """What a reset deletes (existing paths only) and what it keeps."""

    delete: list[Path]
    keep: list[Path]

    @property
    def empty(self) -> bool:
        """Nothing to delete: the state is clean already."""
        return not self.delete


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def plan_reset(settings: Settings) -> ResetPlan:
    """The paths a reset of ``settings``' local state would delete; changes nothing."""
    from refarch.bootstrap import local_postgres

    home = settings.home
    candidates = [home / "index", home / "logs", home / "run"]
    server = local_postgres(settings)
    if server is not None:
        candidates += [server.data_dir, server.socket_dir, server.log_file, server.password_file,
                       server.root / "postgres.lock"]
        if server.root != home:  # root's cluster under /var/lib/refarch, linked from home
            candidates += [home / "postgres", server.root]
    seen: set[str] = set()
    delete = []
    for path in candidates:
        key = os.path.abspath(path)
        if key not in seen and (path.exists() or path.is_symlink()):
            seen.add(key)
            delete.append(path)
    keep = [home / name for name in KEPT if (home / name).exists()]
    return ResetPlan(delete, keep)


def describe(plan: ResetPlan) -> str:
    """The plan as lines a person reads before saying yes."""
    if plan.empty:
        return "refarch reset: nothing to delete, the local state is clean"
    lines = ["refarch reset deletes:"]
    lines += [f"  {path}  ({_size(path) / 1e6:.1f} MB)" for path in plan.delete]
    if plan.keep:
        lines.append("and keeps:")
        lines += [f"  {path}  ({KEPT[path.name]})" for path in plan.keep]
    return "\n".join(lines)


def reset(settings: Settings, plan: ResetPlan) -> list[Path]:
    """Stop the local stack and Postgres, then delete ``plan.delete``; returns what went."""
    from refarch.bootstrap import local_postgres
    from refarch.local.stack import stop_stack

    stop_stack(settings)
    server = local_postgres(settings)
    if server is not None:
        server.stop()
    for path in plan.delete:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.exists():
            shutil.rmtree(path)
    return plan.delete
