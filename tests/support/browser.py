"""The real browser the tests drive: Debian's Chromium through Playwright, headless and offline."""

from __future__ import annotations

import shutil

import pytest

#: Chromium flags for a headless, offline, sandbox-less run (root in CI).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium (``apt-get install chromium``; `make test` installs it as root)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: run `make system-deps` as root or "
                    "`apt-get install chromium` (Playwright's own download does not work offline)")
    return found
