"""HTML made from user content: produced here, and nowhere else.

Chat content is hostile until proven otherwise: an imported export, or a model's reply,
can carry ``<script>``, event handlers, ``javascript:`` links. So Markdown is rendered
with raw HTML **off** (markdown-it-py: HTML in the source comes out as escaped text), code
is highlighted by Pygments into class-only spans (no inline styles, which the
Content-Security-Policy forbids), and the result is **then** sanitized with nh3 (ammonia)
against a short allow-list. Either layer alone would stop a script; both together keep a
bug in one from becoming a hole.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from chatkeep.model import Message
from chatkeep.render import part_markdown

#: CSS class prefix of highlighted code; the stylesheet comes from :func:`highlight_css`.
HIGHLIGHT_CLASS: Final = "hl"

_ALLOWED_TAGS: Final = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES: Final = {
    "a": {"href", "title"},
    "code": {"class"},
    "pre": {"class"},
    "span": {"class"},
    "td": {"align"},
    "th": {"align"},
}
_URL_SCHEMES: Final = {"http", "https", "mailto"}
_FORMATTER: Final = HtmlFormatter(nowrap=True, classprefix=f"{HIGHLIGHT_CLASS}-")


def _highlight(code: str, language: str, _attrs: object) -> str:
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    # Starting with <pre, the block is taken as it is (markdown-it's contract).
    return f'<pre class="{HIGHLIGHT_CLASS}"><code>{highlight(code, lexer, _FORMATTER)}</code></pre>'


@lru_cache(maxsize=2)
def _markdown(breaks: bool = False) -> MarkdownIt:
    options = {"html": False, "highlight": _highlight, "breaks": breaks}
    return MarkdownIt("commonmark", options).enable(["table", "strikethrough"])


def sanitize(html: str) -> str:
    """``html`` cut down to the allow-list: no scripts, handlers, styles or odd URLs."""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def markdown_html(text: str, *, breaks: bool = False) -> str:
    """Markdown as safe HTML (raw HTML in ``text`` shows as text); with ``breaks`` a
    single line break stays one, as a person typing expects."""
    return sanitize(_markdown(breaks).render(text))


def message_html(message: Message) -> str:
    """A message's content parts as one safe HTML fragment. Stored attachments are left
    to the caller (the UI lists them as downloads); a file the export lacked is named."""
    shown = [
        part_markdown(part)
        for part in message.parts
        if not (part.kind in ("image", "file") and part.data.get("attachment_id"))
    ]
    return markdown_html("\n\n".join(shown), breaks=message.role == "user")


@lru_cache(maxsize=1)
def highlight_css() -> str:
    """The stylesheet for highlighted code (served as a file, never inline)."""
    return str(_FORMATTER.get_style_defs(f".{HIGHLIGHT_CLASS}"))  # type: ignore[no-untyped-call]
