"""An issue's intro: Markdown written by an editor, stored as source and rendered at send time.

The HTML is sanitised with nh3 (an allow-list: no scripts, event handlers, styles or javascript:
URLs survive), so an intro cannot inject anything into the email or the archive page.
"""

from __future__ import annotations

from functools import lru_cache

import markdown
import nh3
from lxml import html as lxml_html

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
    return html, html_to_text(html)


def html_to_text(html: str) -> str:
    """Readable plain text of sanitised intro HTML: paragraphs and headings apart by a blank line,
    list items as "- item" (numbered in an ordered list), a link as "label (URL)" (just the URL when
    it is its own label), emphasis and code marks dropped: no Markdown syntax left to read around."""
    root = lxml_html.fragment_fromstring(html, create_parent="div")
    blocks: list[str] = []
    _blocks(root, blocks, "")
    return "\n\n".join(b for b in blocks if b.strip())


_BLOCKS = frozenset({"p", "h2", "h3", "h4", "blockquote", "pre", "ul", "ol", "hr"})


def _blocks(element: lxml_html.HtmlElement, out: list[str], indent: str) -> None:
    for child in element:
        tag = child.tag
        if tag in ("ul", "ol"):
            items = []
            for n, li in enumerate(child.iterchildren("li"), start=1):
                marker = f"{n}." if tag == "ol" else "-"
                items.append(f"{indent}{marker} {_inline(li).strip()}")
            out.append("\n".join(items))
        elif tag == "hr":
            out.append("----")
        elif tag == "blockquote":
            inner: list[str] = []
            _blocks(child, inner, "")
            out.append("\n".join("> " + line for b in (inner or [_inline(child)]) for line in b.splitlines()))
        elif tag == "pre":
            out.append(child.text_content().rstrip())
        elif tag in _BLOCKS:
            out.append(_inline(child).strip())
        else:
            out.append(_inline(child).strip())
    if element.text and element.text.strip() and not len(element):
        out.append(element.text.strip())


def _inline(element: lxml_html.HtmlElement) -> str:
    """The text of an element with its links as "label (URL)" and line breaks kept."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == "a":
            label = _inline(child).strip()
            href = child.get("href", "")
            parts.append(label if not href or href in (label, f"mailto:{label}") else f"{label} ({href})")
        elif child.tag == "br":
            parts.append("\n")
        elif child.tag in ("ul", "ol"):
            nested: list[str] = []
            _blocks(
                lxml_html.fragment_fromstring(lxml_html.tostring(child, encoding="unicode"), create_parent="div"),
                nested,
                "  ",
            )
            parts.append("\n" + "\n".join(nested))
        else:
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return " ".join("".join(parts).split(" ")).replace(" \n", "\n")
