"""CSS inlining with premailer, a block at a time, and the variant text kept out of the blocks.

Inlining goes a block at a time (``BlockInliner``): each item card and each row of the frame
(masthead, lead, intro, footer; the template's ``card`` macro marks them) once per process, whatever
variant it appears in, and the skeleton around them (head, title, preheader) once per distinct
skeleton. Inlining is local to an element (its tag, classes and ancestors inside the block), so the
parts join into the bytes premailer gives for the whole document; tests/unit/rendering/test_inlining.py
proves it. The text that differs between variants goes through ``VariantText`` so that blocks and
skeletons are shared.

premailer (< 4, pinned in pyproject.toml) is used through a subclass that overrides two of its
private methods, ``_parse_style_rules`` and ``_css_rules_to_string``, to parse the one stylesheet
every email carries once per process (``_StylesheetCache``); review them on a premailer upgrade.
"""

from __future__ import annotations

import functools
import html as html_lib
import logging
import re
from typing import Any

from markupsafe import Markup, escape
from premailer import Premailer

from digest.lru import LRUCache


class VariantText:
    """The template's ``variant_text(value, attribute=False)``: a variant's own text inside the
    blocks and the skeleton (subject, preheader, overview, "why" lines, the footer's specialties).

    Marking (``marker`` set), each value is written as the one shared marker and kept, escaped as
    lxml writes it in text or in an attribute value, so that a block or skeleton is the same for
    every variant whatever that text says (a lead names the reader's specialties; keyed with them,
    nearly every variant had a new lead, footer and skeleton for premailer). ``fill`` puts the
    values back in document order once the HTML is inlined: inlining keeps elements and their text
    in order. Not marking, a value is written as autoescaping would write it."""

    def __init__(self, marker: str | None):
        self.marker = marker
        self.values: list[str] = []

    def __call__(self, value: object, attribute: bool = False) -> Markup:
        if self.marker is None:
            return value if isinstance(value, Markup) else escape(value)
        text = html_lib.unescape(str(value)) if isinstance(value, Markup) else str(value)
        self.values.append(_quoted_attribute(text) if attribute else escape_text(text))
        return Markup(_attribute_marker(self.marker) if attribute else self.marker)

    def fill(self, html: str) -> str:
        if self.marker is None:
            return html
        parts = _marker_pattern(self.marker).split(html)
        if len(parts) != len(self.values) + 1:
            raise RuntimeError(
                f"{len(self.values)} variant texts for {len(parts) - 1} markers: inlining lost or repeated one"
            )
        out = [parts[0]]
        for value, part in zip(self.values, parts[1:], strict=True):
            out += (value, part)
        return "".join(out)


def _attribute_marker(marker: str) -> str:
    return marker.replace("%%", "%%attr:", 1)


@functools.cache
def _marker_pattern(marker: str) -> re.Pattern[str]:
    """The text marker, or the attribute marker with the quotes lxml put around it: the value's
    own quotes replace them (see ``_quoted_attribute``)."""
    return re.compile(f'"{re.escape(_attribute_marker(marker))}"|{re.escape(marker)}')


def _quoted_attribute(value: str) -> str:
    """An attribute value with its quotes, as libxml2 writes it: in single quotes when it holds a
    double quote and no single one, else in double quotes, a double quote written ``&quot;``."""
    if '"' in value and "'" not in value:
        return f"'{escape_text(value)}'"
    return f'"{escape_attribute(value)}"'


SKELETONS_KEPT = 64


class BlockInliner:
    """Inlines a document whose blocks (item cards and the frame's rows: masthead, lead, intro,
    footer) are wrapped in marker comments, keeping each block's inlined HTML by its raw HTML.
    Blocks recur across variants (a summary goes to many specialty mixes, a lead or footer to every
    variant of the same specialties), so a variant's document goes to premailer with a slot comment
    in place of each block already known, over the skeleton and the new blocks only. A skeleton
    with every block known (head, title, preheader, with the variant's text as markers: the same
    for every variant of one edition and issue) is inlined once per process too, so most variants
    of a large send make no premailer call at all."""

    def __init__(self, nonce: str, size: int):
        self.marks = (f"<!--{nonce}:block-->", f"<!--{nonce}:/block-->")
        self._slot = f"<!--{nonce}:slot-->"
        self._tokens = re.compile("(" + "|".join(re.escape(m) for m in (*self.marks, self._slot)) + ")")
        # Raw block -> its inlined HTML.
        self._inlined: LRUCache[str, str] = LRUCache(size)
        # Slotted document -> its inlined HTML. With the variant text as markers a skeleton varies by
        # edition and issue only: a few per send, each about 8 KB kept twice.
        self._skeletons: LRUCache[str, str] = LRUCache(SKELETONS_KEPT)

    def inline(self, html: str) -> str:
        opening, closing = self.marks
        first, *rest = html.split(opening)
        doc, fresh, known = [first], [], []
        for piece in rest:
            block, after = piece.split(closing, 1)
            hit = self._inlined.get(block)  # taken now: an insertion below may drop it from the cache
            if hit is None:
                fresh.append(block)
                doc += (f"{opening}{block}{closing}", after)
            else:
                known.append(hit)
                doc += (self._slot, after)
        # A document with a new block will not come again; one of slots only is a known skeleton.
        inlined = inline_css("".join(doc)) if fresh else self._skeleton("".join(doc))
        out: list[str] = []
        known_html, fresh_blocks = iter(known), iter(fresh)
        inlining: str | None = None  # the raw block whose inlined HTML the next token is
        for token in self._tokens.split(inlined):
            if token == self._slot:
                out.append(next(known_html))
            elif token == opening:
                inlining = next(fresh_blocks)
            elif token == closing:
                inlining = None
            else:
                out.append(token)
                if inlining is not None:  # a block inlined just now, in place
                    self._inlined[inlining] = token
        return "".join(out)

    def _skeleton(self, doc: str) -> str:
        """``inline_css(doc)`` for a document whose blocks are all slots, kept by the document."""
        inlined = self._skeletons.get(doc)
        if inlined is None:
            inlined = self._skeletons[doc] = inline_css(doc)
        return inlined


class _StylesheetCache:
    """Parsed style rules and leftover CSS text, by stylesheet text.

    premailer parses and re-serialises the ``<style>`` block with cssutils on every call; that was
    about 80 % of an inlining pass (85 of 108 ms per variant, profiled with the benchmark). Every
    digest carries the same stylesheet, so the work is done once per process. Output is unchanged.
    """

    limit = 32

    def __init__(self) -> None:
        self.rules: dict[tuple[str, int], tuple[list[Any], list[Any]]] = {}
        self.text: dict[int, tuple[list[Any], str]] = {}

    def clear_if_full(self) -> None:
        if len(self.rules) >= self.limit:
            self.rules.clear()
            self.text.clear()


_STYLESHEETS = _StylesheetCache()


class _CachingPremailer(Premailer):
    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
        key = (css_body, ruleset_index)
        hit = _STYLESHEETS.rules.get(key)
        if hit is None:
            _STYLESHEETS.clear_if_full()
            hit = _STYLESHEETS.rules[key] = super()._parse_style_rules(css_body, ruleset_index)
        return hit  # premailer only reads these lists (it copies the rules into its own list)

    def _css_rules_to_string(self, rules: list[Any]) -> str:
        hit = _STYLESHEETS.text.get(id(rules))
        if hit is None or hit[0] is not rules:
            hit = _STYLESHEETS.text[id(rules)] = (rules, super()._css_rules_to_string(rules))
        return hit[1]


PREMAILER_OPTIONS: dict[str, Any] = {
    "keep_style_tags": False,
    "strip_important": False,
    "remove_classes": False,
    "disable_validation": True,
    "allow_network": False,
    "cssutils_logging_level": logging.CRITICAL,
}


def inline_css(raw_html: str) -> str:
    """Inline the CSS; media queries and the dark-mode block stay in a <style> element."""
    return _CachingPremailer(raw_html, **PREMAILER_OPTIONS).transform(pretty_print=False)


def escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    return escape_text(value).replace('"', "&quot;")
