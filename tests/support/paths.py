"""Where things are: the repository's root and the directory tests leave output in."""

from __future__ import annotations

from pathlib import Path

#: The repository's root (the directory holding pyproject.toml).
ROOT = Path(__file__).resolve().parents[2]
#: Output kept for people to look at (executed notebooks, screenshots); not committed.
TEST_OUTPUT = ROOT / "test-output"
