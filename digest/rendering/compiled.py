"""Templates compiled once, each variant rendered and CSS-inlined once, then personalised per recipient.

A *variant* is what subscribers with the same digest share: the same summaries in the same order,
the same edition and the same "why you got this" specialties. The expensive part (Jinja2 plus
premailer) runs once per variant; per-recipient values (greeting, token links) are then put in
place of markers by plain string replacement, HTML-escaped for the HTML part. The markers carry a
per-process random nonce, so that no summary text can forge one.

The three jobs live apart: this module renders variants (``EmailRenderer``, ``Variant``);
``inlining`` inlines their CSS a block at a time with the variant's own text kept aside
(``BlockInliner``, ``VariantText``, premailer); ``personalisation`` fills in each recipient
(``Recipient``, ``personalise``). The templates' filters are in ``filters``; how a template marks
its blocks and variant text is in docs/templates.md.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, partial
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from jinja2 import Environment, StrictUndefined, Template, select_autoescape

from digest import __version__
from digest.config import DEFAULT_LOCALE
from digest.i18n import N_, install, translations
from digest.lru import LRUCache
from digest.rendering.filters import filters_for
from digest.rendering.headers import one_line
from digest.rendering.inlining import BlockInliner, VariantText, inline_css
from digest.rendering.marked import MarkedText
from digest.rendering.personalisation import RECIPIENT_FIELDS, Recipient, RenderedEmail, VariantBody, personalise
from digest.rendering.shared_bodies import BodyStore
from digest.rendering.subjects import digest_subject, heading
from digest.resources import PACKAGE, template_loader

EVIDENCE_LEVELS = {  # in English; translated where shown
    1: N_("Level 1: systematic review or meta-analysis of randomised trials"),
    2: N_("Level 2: randomised controlled trial"),
    3: N_("Level 3: cohort or non-randomised controlled study"),
    4: N_("Level 4: case-control, cross-sectional or case series"),
    5: N_("Level 5: expert opinion or mechanistic reasoning"),
}


@dataclass(frozen=True)
class Variant:
    """Everything that shapes a digest body except the recipient."""

    edition: str
    items: tuple[dict[str, Any], ...]  # item views, in order (see ``item_view``)
    specialties: tuple[str, ...]  # display names of the recipient's specialties these items serve
    issue: dict[str, Any] = field(default_factory=dict)  # subject/preheader/intro/web_url/date
    locale: str = DEFAULT_LOCALE  # the reader's language: headings, footer and dates (digest/i18n.py)

    @cached_property
    def key(self) -> str:
        """A stable digest of everything the body is rendered from, stored on each delivery it
        served and keying the rendered body: a summary edited during a send is a new variant, so
        the messages composed after the edit carry it. The locale is part of it (a Spanish reader
        never gets the English body), added only when it is not the default so that the keys of
        English variants stay those recorded before there were locales."""
        parts: list[Any] = [self.edition, self.items, self.specialties, self.issue]
        if self.locale != DEFAULT_LOCALE:
            parts.append(self.locale)
        payload = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


def item_view(summary: Any, why: list[str]) -> dict[str, Any]:
    """The template's view of a Summary row (plain data, hashable into a variant key)."""
    return {
        "id": summary.id,
        "title": summary.title,
        "key_takeaway": summary.key_takeaway,
        "summary": summary.summary,
        "patient_summary": summary.patient_summary,
        "patient_title": summary.patient_title,
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
    """Compiles the email templates once per locale; renders variants and personalises them."""

    def __init__(
        self,
        *,
        base_url: str,
        list_name: str,
        cache_size: int = 512,
        link_signer: Callable[[str], str] | None = None,
        postal_address: str = "",
        shared: Callable[[str], BodyStore] | None = None,
    ):
        """``shared``: given this renderer's ``fingerprint``, the store through which processes
        share the bodies they render (digest/rendering/shared_bodies.py); None: this process alone."""
        self._envs: dict[str, Environment] = {}
        self.base_url = base_url.rstrip("/")
        self.list_name = list_name
        self.postal_address = postal_address
        self.link_signer = link_signer
        self._nonce = secrets.token_hex(6)
        self._markers = {f: f"%%{self._nonce}:{f}%%" for f in RECIPIENT_FIELDS}
        self._variant_marker = f"%%{self._nonce}:variant-text%%"
        self._cache: LRUCache[str, VariantBody] = LRUCache(cache_size)
        self._blocks = BlockInliner(self._nonce, cache_size * 8)
        self.shared = shared(self.fingerprint) if shared is not None else None
        self.passes = 0  # render + inline passes in this process: one per variant not found shared

    @property
    def env(self) -> Environment:
        """The English environment (the templates' source language)."""
        return self.environment(DEFAULT_LOCALE)

    def environment(self, locale: str) -> Environment:
        """The templates' environment bound to ``locale``: compiled once per locale, so a template
        compiled for one language never serves another."""
        env = self._envs.get(locale)
        if env is None:
            env = Environment(
                loader=template_loader(),
                autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            install(env, locale)
            env.filters.update(filters_for(locale))
            env.globals.update(
                heading=heading, digest_subject=partial(digest_subject, translations=translations(locale))
            )
            self._envs[locale] = env
        return env

    def _template(self, locale: str, name: str) -> Template:
        return self.environment(locale).get_template(f"email/{name}.j2")

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
            "postal_address": self.postal_address,
            "base_url": self.base_url,
            "evidence_levels": EVIDENCE_LEVELS,
            "link": self._linker(variant, recipient),
            "references": References(),
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
        subject = one_line(self._template(variant.locale, "digest.subject.txt").render(ctx), 998)
        raw_html = self._template(variant.locale, "digest.html").render(ctx, subject=subject)
        text = self._template(variant.locale, "digest.txt").render(ctx, subject=subject)
        return RenderedEmail(subject=subject, html=raw_html, text=text)

    def marked_text(self) -> VariantText:
        return VariantText(self._variant_marker)

    def _render(self, variant: Variant, recipient: dict[str, str]) -> RenderedEmail:
        texts = self.marked_text()
        raw = self.render_uninlined(variant, recipient, marked=texts)
        self.passes += 1
        return RenderedEmail(subject=raw.subject, html=texts.fill(self._blocks.inline(raw.html)), text=raw.text)

    @cached_property
    def fingerprint(self) -> str:
        """What, besides the variant, decides a rendered body: the rendering code, the templates and
        catalogues it reads, the list's settings, and the key that signs tracked links (a signed
        sample). Bodies are shared between processes only under the same fingerprint."""
        h = hashlib.sha256()
        package = files(PACKAGE)
        for folder in ("rendering", "templates/email", "locales"):
            for path, data in sorted(_tree(package.joinpath(folder), folder)):
                h.update(f"{len(path)}:{path}:{len(data)}:".encode() + data)
        signed = self.link_signer("https://fingerprint.invalid/") if self.link_signer is not None else ""
        settings = [__version__, self.base_url, self.list_name, self.postal_address, signed]
        h.update(json.dumps(settings).encode())
        return h.hexdigest()[:24]

    def variant_body(self, variant: Variant) -> VariantBody:
        """The inlined body of a variant with recipient markers: kept in this process, read from the
        shared store when another process rendered it, else rendered here (and shared)."""
        key = variant.key
        body = self._cache.get(key)
        if body is None:
            body = self.shared.get(key) if self.shared is not None else None
            if body is None:
                body = self._render_body(variant)
                if self.shared is not None:
                    self.shared.put(key, body)
            self._cache[key] = body
        return body

    def _render_body(self, variant: Variant) -> VariantBody:
        marked = self._render(variant, self._markers)
        fields = {marker: name for name, marker in self._markers.items()}
        return VariantBody(
            subject=marked.subject,
            preheader=str(variant.issue.get("preheader", "")),
            html=MarkedText(marked.html, fields),
            text=MarkedText(marked.text, fields),
        )

    def render(self, variant: Variant, recipient: Recipient) -> RenderedEmail:
        """The email for one recipient (through the shared variant body)."""
        return personalise(self.variant_body(variant), recipient)

    def render_email(self, name: str, context: dict[str, Any], locale: str = DEFAULT_LOCALE) -> RenderedEmail:
        """A one-off email (e.g. ``confirm``) from ``email/<name>.{subject.txt,html,txt}.j2``, in ``locale``."""
        # One render, no variants: the frame's variant_text writes what autoescaping writes, and its
        # cards carry no caching markers.
        ctx = {
            "list_name": self.list_name,
            "base_url": self.base_url,
            "postal_address": self.postal_address,
            "variant_text": VariantText(None),
            "block_open": "",
            "block_close": "",
            **context,
        }
        subject = one_line(self._template(locale, f"{name}.subject.txt").render(ctx), 998)
        html = inline_css(self._template(locale, f"{name}.html").render(ctx, subject=subject))
        text = self._template(locale, f"{name}.txt").render(ctx, subject=subject)
        return RenderedEmail(subject=subject, html=html, text=text)

    def render_alone(self, variant: Variant, recipient: Recipient) -> RenderedEmail:
        """Reference path: render this recipient's values straight through Jinja2 and premailer,
        the whole document in one call (no markers, no block caches).

        Used by previews and by the tests that prove the shared-variant path gives the same bytes.
        """
        raw = self.render_uninlined(variant, recipient.values())
        return RenderedEmail(subject=raw.subject, html=inline_css(raw.html), text=raw.text)


def _tree(node: Traversable, path: str) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file under ``node``, compiled caches left out."""
    for child in node.iterdir():
        name = f"{path}/{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                yield from _tree(child, name)
        elif not child.name.endswith((".pyc", ".mo")):
            yield name, child.read_bytes()


class References:
    """The plain-text part's numbered links: ``references(url)`` gives "[n]" in the text and the
    URLs are listed once, numbered, at the end, so a 190-character tracked link does not break up
    what a reader reads (one render of a template uses one instance)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> str:
        if url not in self.urls:
            self.urls.append(url)
        return f"[{self.urls.index(url) + 1}]"
