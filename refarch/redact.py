"""Hiding secrets in what refarch prints and logs: passwords in URLs, API keys.

One place for the rule, used by messages, logs (:func:`refarch.logs.configure` redacts every
line it writes), the CLI's error line, ``refarch status`` and the settings' ``repr``. The
commands whose job is to hand out a credential (``refarch db url``) are the only ones that
print it.
"""

from __future__ import annotations

import re

#: What a hidden secret is shown as.
MASK = "***"

# user:password@ in a URL's authority; greedy up to the last "@" before the path, so a
# password with a stray unencoded "@" is hidden whole.
_URL_PASSWORD = re.compile(r"(://[^:/@?#\s]*:)[^/?#\s]*@")
# password=... as a URL query parameter or a libpq key=value pair (quoted or not).
_KEYWORD_PASSWORD = re.compile(r"((?:\b|_|PG)password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", re.I)


def redact_url(text: str) -> str:
    """``text`` (a URL, a libpq conninfo, or a message containing them) with every password
    replaced by ``***``."""
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}@", text)
    return _KEYWORD_PASSWORD.sub(rf"\g<1>{MASK}", text)


def mask(secret: str | None) -> str | None:
    """``***`` for a secret that is set (None stays None: whether it is set is not secret)."""
    return None if secret is None else MASK
