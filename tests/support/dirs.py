"""Directories a PostgreSQL server running as another user can enter."""

from __future__ import annotations

import tempfile
from pathlib import Path

from refarch.db.privileges import blocking_directory, choose_server_user


def scratch_dir(prefix: str) -> Path:
    """A new empty directory (mode 755) that the PostgreSQL server user can enter.

    pytest's own ``tmp_path`` lives under a mode-700 directory, which a server running as
    another user cannot reach, so server directories are made under the system temp dir.
    """
    user = choose_server_user(None)
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if Path(base).is_dir() and blocking_directory(Path(base) / "x", user) is None:
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
            path.chmod(0o755)
            return path
    raise RuntimeError(f"no temporary directory that user {user.name} can enter")
