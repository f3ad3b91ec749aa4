"""An issue's intro: Markdown written by an editor, stored as source and rendered at send time.

The HTML is sanitised with nh3 (an allow-list: no scripts, event handlers, styles or javascript:
URLs survive), so an intro cannot inject anything into the email or the archive page.
"""

from __future__ import annotations

import html as html_lib
from functools import lru_cache

import markdown
import nh3

ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "b", "i", "a", "ul", "ol", "li", "blockquote", "code", "pre", "h2", "h3", "h4", "hr"}
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}


@lru_cache(maxsize=64)
def render_intro(source: str) -> tuple[str, str]:
    """(sanitised HTML, plain text) of an intro's Markdown; both empty for an empty intro."""
    if not source.strip():
        return "", ""
    raw = markdown.markdown(source, extensions=["sane_lists"], output_format="html")
    html = nh3.clean(
        raw,
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    # The Markdown source is the plain-text part (Markdown is written to be read as text), with
    # any raw HTML tags and script/style contents taken out.
    text = html_lib.unescape(nh3.clean(source, tags=set())).strip()
    return html, text
