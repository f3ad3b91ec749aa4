"""Templates compiled once, rendered and CSS-inlined once per variant, personalised per recipient.

A *variant* is what subscribers with the same digest share: the same summaries in the same order,
the same edition and the same "why you got this" specialties. The expensive part (Jinja2 plus
premailer) runs once per variant; per-recipient values (greeting, token links) are then put in
place of markers by plain string replacement, HTML-escaped for the HTML part. The markers carry a
per-process random nonce, so that no summary text can forge one.

Inlining goes a block at a time: each item card and each row of the frame (masthead, lead, intro,
footer) once per process, whatever variant it appears in, and the skeleton around them (head,
title, preheader) once per distinct skeleton. Inlining is local to an element (its tag, classes and
ancestors inside the block), so the parts join into the bytes premailer gives for the whole
document; tests/unit/rendering/test_compiled_parts.py proves it.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import html as html_lib
import json
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from premailer import Premailer

from digest.rendering.headers import one_line
from digest.rendering.marked import MarkedText
from digest.resources import template_loader

RECIPIENT_FIELDS = ("greeting", "unsubscribe_url", "preferences_url", "email", "click_base")
# URL fields only ever appear inside attributes (href), the others only in text. Each is escaped the
# way lxml serialises that context, so a personalised body is byte-identical to a direct render.
ATTRIBUTE_FIELDS = frozenset({"unsubscribe_url", "preferences_url", "click_base"})
EVIDENCE_LEVELS = {
    1: "Level 1: systematic review or meta-analysis of randomised trials",
    2: "Level 2: randomised controlled trial",
    3: "Level 3: cohort or non-randomised controlled study",
    4: "Level 4: case-control, cross-sectional or case series",
    5: "Level 5: expert opinion or mechanistic reasoning",
}


@dataclass(frozen=True)
class Recipient:
    """The per-subscriber parts of a message."""

    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str
    click_base: str = ""  # start of this message's tracked links (digest/issues/links.py)

    def values(self) -> dict[str, str]:
        first = self.name.split()[0] if self.name.split() else ""
        return {
            "greeting": f"Hi {first}," if first else "Hello,",
            "unsubscribe_url": safe_url(self.unsubscribe_url),
            "preferences_url": safe_url(self.preferences_url),
            "email": self.email,
            "click_base": self.click_base,
        }


@dataclass(frozen=True)
class Variant:
    """Everything that shapes a digest body except the recipient."""

    edition: str
    items: tuple[dict[str, Any], ...]  # item views, in order (see ``item_view``)
    specialties: tuple[str, ...]  # display names of the recipient's specialties these items serve
    issue: dict[str, Any] = field(default_factory=dict)  # subject/preheader/intro/web_url/date

    @cached_property
    def key(self) -> str:
        """A stable digest of everything the body is rendered from, stored on each delivery it
        served and keying the rendered body: a summary edited during a send is a new variant, so
        the messages composed after the edit carry it."""
        payload = json.dumps([self.edition, self.items, self.specialties, self.issue], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class VariantBody:
    subject: str
    preheader: str
    html: MarkedText  # inlined, cut at the recipient markers
    text: MarkedText


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    # The text and HTML bodies as quoted-printable, when the variant's pre-encoded pieces made them.
    encoded: tuple[bytes, bytes] | None = None


def item_view(summary: Any, why: list[str]) -> dict[str, Any]:
    """The template's view of a Summary row (plain data, hashable into a variant key)."""
    return {
        "id": summary.id,
        "title": summary.title,
        "key_takeaway": summary.key_takeaway,
        "summary": summary.summary,
        "patient_summary": summary.patient_summary,
        "study_type": summary.study_type,
        "sample_size": summary.sample_size,
        "evidence_level": summary.evidence_level,
        "study_published": summary.study_published,
        "outcomes": list(summary.outcomes or []),
        "safety": summary.safety,
        "source_url": summary.source_url,
        "published_at": summary.published_at,
        "why": why,
        # The version carried (recorded per variant: digest/ledger/models.py CarriedVersion) and
        # its status: a corrected summary says so where it appears. Read with defaults: previews
        # and tests render rows that were never stored (no version yet).
        "version": getattr(summary, "version", None) or 1,
        "status": getattr(summary, "status", None) or "published",
        "correction_note": getattr(summary, "correction_note", None),
    }


class EmailRenderer:
    """Compiles the email templates once; renders variants and personalises them."""

    def __init__(
        self,
        *,
        base_url: str,
        list_name: str,
        cache_size: int = 512,
        link_signer: Callable[[str], str] | None = None,
    ):
        self.env = Environment(
            loader=template_loader(),
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            thousands=_thousands,
            month=_month,
            join_and=_join_and,
            sentence=_sentence,
            same_places=_same_places,
            plain=_plain,
        )
        self._templates = {
            name: self.env.get_template(f"email/digest.{name}.j2") for name in ("subject.txt", "html", "txt")
        }
        self.base_url = base_url.rstrip("/")
        self.list_name = list_name
        self.link_signer = link_signer
        self._nonce = secrets.token_hex(6)
        self._markers = {f: f"%%{self._nonce}:{f}%%" for f in RECIPIENT_FIELDS}
        self._variant_marker = f"%%{self._nonce}:variant-text%%"
        self._cache: OrderedDict[str, VariantBody] = OrderedDict()
        self._cache_size = cache_size
        self._blocks = _BlockInliner(self._nonce, cache_size * 8)
        self.passes = 0  # render + inline passes so far: one per distinct variant

    def _context(self, variant: Variant, recipient: dict[str, str]) -> dict[str, Any]:
        return {
            "variant": variant,
            "items": variant.items,
            "edition": variant.edition,
            "issue": variant.issue,
            "specialties": variant.specialties,
            "recipient": recipient,
            "block_open": "",  # around each card and frame row: markers when inlined a part at a time
            "block_close": "",
            "list_name": self.list_name,
            "base_url": self.base_url,
            "evidence_levels": EVIDENCE_LEVELS,
            "link": self._linker(variant, recipient),
        }

    def _linker(self, variant: Variant, recipient: dict[str, str]) -> Callable[[str], str]:
        """Item links: through ``/r/`` when the issue tracks clicks (the URL signed once per variant,
        the recipient's part a marker), otherwise the plain URL."""
        signer = self.link_signer
        if signer is None or not variant.issue.get("track_clicks"):
            return lambda url: url
        return lambda url: recipient["click_base"] + signer(url)

    def render_uninlined(
        self, variant: Variant, recipient: dict[str, str], *, marked: VariantText | None = None
    ) -> RenderedEmail:
        """Subject, HTML before its CSS is inlined, and text: the Jinja2 half of a render. The
        benchmark's naive baseline inlines it with stock premailer, as a sender without variants
        would. ``marked``: the HTML for ``_BlockInliner``, blocks between marks and the variant's
        own text as markers (kept in ``marked``)."""
        ctx = self._context(variant, recipient)
        ctx["variant_text"] = marked or VariantText(None)
        if marked is not None:
            ctx["block_open"], ctx["block_close"] = self._blocks.marks
        subject = one_line(self._templates["subject.txt"].render(ctx), 998)
        raw_html = self._templates["html"].render(ctx, subject=subject)
        text = self._templates["txt"].render(ctx, subject=subject)
        return RenderedEmail(subject=subject, html=raw_html, text=text)

    def marked_text(self) -> VariantText:
        return VariantText(self._variant_marker)

    def _render(self, variant: Variant, recipient: dict[str, str]) -> RenderedEmail:
        texts = self.marked_text()
        raw = self.render_uninlined(variant, recipient, marked=texts)
        self.passes += 1
        return RenderedEmail(subject=raw.subject, html=texts.fill(self._blocks.inline(raw.html)), text=raw.text)

    def variant_body(self, variant: Variant) -> VariantBody:
        """The inlined body of a variant with recipient markers; rendered once, then cached."""
        key = variant.key
        body = self._cache.get(key)
        if body is None:
            marked = self._render(variant, self._markers)
            fields = {marker: name for name, marker in self._markers.items()}
            body = VariantBody(
                subject=marked.subject,
                preheader=str(variant.issue.get("preheader", "")),
                html=MarkedText(marked.html, fields),
                text=MarkedText(marked.text, fields),
            )
            self._cache[key] = body
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return body

    def personalise(self, body: VariantBody, recipient: Recipient) -> RenderedEmail:
        text_values = recipient.values()
        html_values = {
            name: _escape_attribute(value) if name in ATTRIBUTE_FIELDS else _escape_text(value)
            for name, value in text_values.items()
        }
        text_qp = body.text.fill_quoted_printable(text_values)
        html_qp = body.html.fill_quoted_printable(html_values)
        return RenderedEmail(
            subject=body.subject,
            html=body.html.fill(html_values),
            text=body.text.fill(text_values),
            encoded=(text_qp, html_qp) if text_qp is not None and html_qp is not None else None,
        )

    def render(self, variant: Variant, recipient: Recipient) -> RenderedEmail:
        """The email for one recipient (through the shared variant body)."""
        return self.personalise(self.variant_body(variant), recipient)

    def render_email(self, name: str, context: dict[str, Any]) -> RenderedEmail:
        """A one-off email (e.g. ``confirm``) from ``email/<name>.{subject.txt,html,txt}.j2``."""
        ctx = {"list_name": self.list_name, "base_url": self.base_url, **context}
        subject = one_line(self.env.get_template(f"email/{name}.subject.txt.j2").render(ctx), 998)
        html = inline_css(self.env.get_template(f"email/{name}.html.j2").render(ctx, subject=subject))
        text = self.env.get_template(f"email/{name}.txt.j2").render(ctx, subject=subject)
        return RenderedEmail(subject=subject, html=html, text=text)

    def render_alone(self, variant: Variant, recipient: Recipient) -> RenderedEmail:
        """Reference path: render this recipient's values straight through Jinja2 and premailer,
        the whole document in one call (no markers, no block caches).

        Used by previews and by the tests that prove the shared-variant path gives the same bytes.
        """
        raw = self.render_uninlined(variant, recipient.values())
        return RenderedEmail(subject=raw.subject, html=inline_css(raw.html), text=raw.text)


def safe_url(url: str) -> str:
    """Percent-encode what lxml would rewrite in an href (non-ASCII, quotes, angle brackets,
    spaces), so that a URL put in after inlining is byte-identical to one rendered through it."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")


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
        self.values.append(_quoted_attribute(text) if attribute else _escape_text(text))
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
        for value, part in zip(self.values, parts[1:]):
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
        return f"'{_escape_text(value)}'"
    return f'"{_escape_attribute(value)}"'


SKELETONS_KEPT = 64


class _BlockInliner:
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
        self._size = size
        self._inlined: OrderedDict[str, str] = OrderedDict()
        # Slotted document -> its inlined HTML. With the variant text as markers a skeleton varies by
        # edition and issue only: a few per send, each about 8 KB kept twice.
        self._skeletons: OrderedDict[str, str] = OrderedDict()

    def inline(self, html: str) -> str:
        opening, closing = self.marks
        first, *rest = html.split(opening)
        doc, blocks, new = [first], [], False
        for piece in rest:
            block, after = piece.split(closing, 1)
            blocks.append(block)
            known = block in self._inlined
            new = new or not known
            doc += (self._slot if known else f"{opening}{block}{closing}", after)
        # A document with a new block will not come again; one of slots only is a known skeleton.
        inlined = inline_css("".join(doc)) if new else self._skeleton("".join(doc))
        out: list[str] = []
        pending = iter(blocks)
        inlining: str | None = None  # the raw block whose inlined HTML the next token is
        for token in self._tokens.split(inlined):
            if token == self._slot:
                known = next(pending)
                self._inlined.move_to_end(known)
                out.append(self._inlined[known])
            elif token == opening:
                inlining = next(pending)
            elif token == closing:
                inlining = None
            else:
                out.append(token)
                if inlining is not None:  # a block inlined just now, in place
                    self._inlined[inlining] = token
        while len(self._inlined) > self._size:
            self._inlined.popitem(last=False)
        return "".join(out)

    def _skeleton(self, doc: str) -> str:
        """``inline_css(doc)`` for a document whose blocks are all slots, kept by the document."""
        inlined = self._skeletons.get(doc)
        if inlined is None:
            inlined = self._skeletons[doc] = inline_css(doc)
            if len(self._skeletons) > SKELETONS_KEPT:
                self._skeletons.popitem(last=False)
        else:
            self._skeletons.move_to_end(doc)
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


class _CachingPremailer(Premailer):  # type: ignore[misc]
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


def _thousands(value: object) -> object:
    return f"{value:,}" if isinstance(value, int) else value


def _sentence(value: str) -> str:
    """Upper-case the first letter only ("capitalize" would turn "RCT" into "Rct")."""
    return value[:1].upper() + value[1:]


def _same_places(values: Sequence[float | int | None]) -> list[str]:
    """An estimate and its CI bounds to the same number of decimals, with a true minus sign.

    Floats drop trailing zeros (0.10 arrives as 0.1), so "0.1 to 0.32" would misreport precision;
    the most precise of the three sets the places. None stays "" (no bound reported).
    """
    places = max((_places(v) for v in values if v is not None), default=0)
    return ["" if v is None else f"{v:.{places}f}".replace("-", "\u2212") for v in values]


def _places(value: float | int) -> int:
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _month(value: str | None) -> str:
    """ "2026-01" -> "Jan 2026"; other shapes pass through."""
    if value and len(value) >= 7 and value[4] == "-" and value[5:7].isdigit() and 1 <= int(value[5:7]) <= 12:
        return f"{calendar.month_abbr[int(value[5:7])]} {value[:4]}"
    return value or ""


def _join_and(values: Sequence[str]) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1] if values else ""


def _plain(value: object) -> Markup:
    """A macro's output as HTML text. The macros (email/_macros.j2) serve the plain-text part too,
    so they do not escape what they put together, yet Jinja2 hands their output to an autoescaped
    template as markup: unescaped, a study type or specialty name with a "<" was HTML."""
    return escape(str(value))


def _escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;")
