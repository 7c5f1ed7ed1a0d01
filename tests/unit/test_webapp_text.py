"""User-supplied text reaches the page's Markdown as literal text (refarch/webapp/text.py).

The escaped text is rendered by a CommonMark parser (markdown-it-py, tables and strikethrough
on, as GitHub-flavoured Markdown has them) and must come out as exactly the input, as text;
the browser test renders it with Streamlit itself.
"""

from __future__ import annotations

import html
import string

import pytest
from markdown_it import MarkdownIt

from refarch.webapp.text import literal

HOSTILE = [
    "[Login](https://evil.example)",
    "![x](https://evil.example/pixel.png)",
    "<img src=x onerror=alert(1)>",
    "<https://evil.example>",
    "**bold** __bold__ *em* _em_ ~~gone~~ `code`",
    "# heading",
    "> quote",
    "- item",
    "1. item",
    "| a | b |",
    "&lt;entity&gt; &amp;",
    "\\[already escaped\\]",
    ":red[red] :material/home: :smile: $x^2$ $$y$$",
    "[ref]: https://evil.example",
    "a -> b <- c <-> d -- e >= f <= g ~= h :streamlit:",
]


def _render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_renders_it_as_exactly_the_text(text: str) -> None:
    rendered = _render(literal(text))
    assert rendered.replace("\u2060", "") == f"<p>{html.escape(text, quote=False)}</p>\n"


def test_lines_stay_lines_and_leading_spaces_are_not_code() -> None:
    rendered = _render(literal("first\n    second *x*"))
    assert rendered == "<p>first<br />\n\u00a0\u00a0\u00a0\u00a0second *x*</p>\n"


def test_plain_words_and_other_objects() -> None:
    assert literal("Name must not be empty") == "Name must not be empty"
    assert literal(ValueError("bad [x]")) == "bad \\[x\\]"
    assert literal("") == ""


def test_symbol_pairs_streamlit_replaces_are_split_invisibly() -> None:
    # Streamlit turns " -> " into an arrow after parsing, so escaping alone cannot stop it.
    assert literal("a -> b") == "a \\-\u2060\\> b"
    assert literal(":streamlit:") == "\\:\u2060streamlit\\:"
    assert literal("x-y") == "x\\-y"  # a lone dash needs no joiner


@pytest.mark.parametrize(
    ("text", "split"),
    [("see https://evil.example", "see https:\u2060//evil.example"),
     ("www.evil.example", "www\u2060.evil.example"),
     ("WWW.evil.example", "WWW\u2060.evil.example"),
     ("mail me@evil.example", "mail me@\u2060evil.example")],
)
def test_autolink_literals_are_split_invisibly(text: str, split: str) -> None:
    # GitHub's autolink literals are found in text nodes after parsing, escapes or not.
    assert literal(text) == literal_without_joiners(split)
    assert literal(text).replace("\u2060", "") == literal_without_joiners(text)


def literal_without_joiners(text: str) -> str:
    """``text`` escaped only (what literal() does but the joiners)."""
    return "".join("\\" + c if c in string.punctuation else c for c in text)
