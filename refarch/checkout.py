"""Where the parts of a clone that are not the package live (``app/``, ``infra/``,
``notebooks/``): beside the ``refarch`` directory, in a clone or in the container image."""

from __future__ import annotations

from pathlib import Path

from refarch.errors import ConfigError

#: The repository (or image) root: the directory holding ``refarch/``.
ROOT = Path(__file__).resolve().parents[1]


def checkout_path(relative: Path, what: str, how: str) -> Path:
    """``ROOT / relative``; :class:`ConfigError` naming ``what`` and ``how`` to get it when
    this install does not include it (an installed wheel rather than a clone)."""
    path = ROOT / relative
    if not path.exists():
        raise ConfigError(f"{what} is not at {path}: {how}")
    return path
