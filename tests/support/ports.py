"""Free TCP ports on the loopback address."""

from __future__ import annotations

from refarch.index.process import find_free_port


def free_port() -> int:
    """A TCP port nothing listens on right now (on 127.0.0.1)."""
    return find_free_port()
