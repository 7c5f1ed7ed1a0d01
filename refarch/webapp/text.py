"""Showing text the user (or the data) supplied on the page literally, never as Markdown.

Streamlit renders the body of ``st.markdown``, ``st.caption``, ``st.error`` and the other
alerts, and widget ``help`` tooltips, as Markdown with extras: links, images, HTML, emphasis,
``:red[...]`` directives, ``:material/...:`` icons, emoji shortcodes, ``$...$`` LaTeX, and
arrows and dashes made from ``->``, ``--``, ``>=``. A product named
``[Login](https://evil.example)`` must not become a link, so every product field, the query,
and every error message (they quote values) passes through :func:`literal` before it reaches
one of those elements. Tables (``st.dataframe``) and widget values and options are plain text
already.
"""

from __future__ import annotations

import re
import string

#: U+2060 WORD JOINER: invisible, no line break; splits what Streamlit turns into something
#: else after parsing, where an escape no longer helps.
_JOINER = "\u2060"
_ESCAPES = str.maketrans({char: "\\" + char for char in string.punctuation})
# Streamlit rewrites text nodes after the Markdown is parsed: "->" becomes an arrow,
# ":streamlit:" its logo, and (GitHub's autolink literals) "https://...", "www.x" and "a@b.c"
# become links. A joiner inside each such token keeps it text.
_REWRITTEN = re.compile(
    r"(?<=[-<>~=:])(?=[-<>=]|streamlit:)"  # arrows, dashes, comparisons; the logo
    r"|(?<=:)(?=/)"  # scheme://
    r"|(?<=www)(?=\.)"  # www.
    r"|(?<=@)(?=[-\w])",  # user@host
    re.IGNORECASE,
)


def literal(text: object) -> str:
    """Markdown that Streamlit shows as exactly ``str(text)``: every ASCII punctuation
    character backslash-escaped (CommonMark allows it for all of them), what Streamlit would
    still turn into a symbol or a link split by an invisible word joiner, and line breaks kept
    as line breaks.
    """
    lines = str(text).splitlines() or [""]
    escaped = [_REWRITTEN.sub(_JOINER, line).translate(_ESCAPES) for line in lines]
    # A line starting with spaces would be indented code: keep the spaces as no-break spaces.
    escaped = [re.sub(r"^ +", lambda m: "\u00a0" * len(m.group()), line) for line in escaped]
    return "  \n".join(escaped)
