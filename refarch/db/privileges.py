"""Who runs the PostgreSQL server, and can that user reach its files.

PostgreSQL refuses to run as root. When refarch runs as root (containers, CI) the server runs
as an unprivileged OS user instead: the one that owns an existing data directory, else the
configured ``REFARCH_PG_USER``, else ``postgres`` (created by Debian's package), else
``nobody``. Commands are run as that user with ``setpriv`` (no PAM session needed, so it works
in minimal containers) or ``runuser``. When refarch is not root, everything runs as the caller.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from refarch.errors import PostgresRuntimeError

#: Users tried, in order, when running as root and no user is configured.
DEFAULT_SERVER_USERS = ("postgres", "nobody")


@dataclass(frozen=True)
class ServerUser:
    """The OS user the server runs as."""

    name: str
    uid: int
    gid: int

    @property
    def groups(self) -> list[int]:
        """The user's primary and supplementary group ids."""
        return os.getgrouplist(self.name, self.gid)

    @classmethod
    def from_uid(cls, uid: int) -> ServerUser:
        """The user with this uid (a nameless uid gets its number as name)."""
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return cls(str(uid), uid, uid)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    @classmethod
    def current(cls) -> ServerUser:
        """The user this process runs as."""
        user = cls.from_uid(os.geteuid())
        return cls(user.name, os.geteuid(), os.getegid())


def is_root() -> bool:
    """Whether this process runs as root (and so must not run the server itself)."""
    return os.geteuid() == 0


def choose_server_user(configured: str | None, data_dir: Path | None = None) -> ServerUser:
    """Pick the OS user that runs the server.

    Not root: the caller. Root: the owner of an existing ``data_dir`` (a cluster must run as
    its owner), else ``configured``, else the first of :data:`DEFAULT_SERVER_USERS` that exists.
    """
    if not is_root():
        return ServerUser.current()
    if data_dir is not None and (data_dir / "PG_VERSION").exists():
        owner = data_dir.stat().st_uid
        if owner == 0:
            raise PostgresRuntimeError(
                f"the data directory {data_dir} is owned by root, and PostgreSQL cannot run as "
                "root; chown it to an unprivileged user (e.g. chown -R postgres "
                f"{data_dir}) or remove it to start afresh"
            )
        return ServerUser.from_uid(owner)
    names = (configured,) if configured else DEFAULT_SERVER_USERS
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise PostgresRuntimeError(
                f"REFARCH_PG_USER={name} is root; PostgreSQL must run as an unprivileged user"
            )
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if configured:
        raise PostgresRuntimeError(
            f"REFARCH_PG_USER={configured}: no such OS user; create it "
            f"(useradd --system {configured}) or unset REFARCH_PG_USER"
        )
    raise PostgresRuntimeError(
        "refarch runs as root and PostgreSQL must run as an unprivileged user, but none of "
        f"{', '.join(DEFAULT_SERVER_USERS)} exists; create one (useradd --system postgres), "
        "set REFARCH_PG_USER, or run refarch as an ordinary user"
    )


def run_as_prefix(user: ServerUser) -> list[str]:
    """The command prefix that runs a program as ``user`` (empty when that is the caller)."""
    if user.uid == os.geteuid():
        return []
    setpriv = shutil.which("setpriv") or _sbin("setpriv")
    if setpriv:
        return [setpriv, f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--"]
    runuser = shutil.which("runuser") or _sbin("runuser")
    if runuser:
        return [runuser, "-u", user.name, "--"]
    raise PostgresRuntimeError(
        f"cannot run the server as {user.name}: neither setpriv nor runuser is installed "
        "(Debian package util-linux)"
    )


def _sbin(name: str) -> str | None:
    for directory in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        candidate = Path(directory) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _can_search(path: Path, user: ServerUser, groups: list[int]) -> bool:
    st = path.stat()
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def blocking_directory(path: Path, user: ServerUser) -> Path | None:
    """The first existing directory above ``path`` that ``user`` cannot enter, or None.

    PostgreSQL must be able to ``chdir`` into its data directory, so every directory above it
    needs the search (x) permission for the server user. Checked from permission bits (ACLs are
    not considered).
    """
    groups = user.groups if user.uid != os.geteuid() else list(os.getgroups()) + [os.getegid()]
    path = Path(os.path.abspath(path))
    for ancestor in reversed(path.parents):
        if not ancestor.exists():
            break
        if not _can_search(ancestor, user, groups):
            return ancestor
    return None
