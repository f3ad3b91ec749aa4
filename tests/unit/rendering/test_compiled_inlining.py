"""The cached stylesheet work gives byte for byte what stock premailer gives."""

from __future__ import annotations

from premailer import Premailer

from digest.rendering.compiled import EmailRenderer, Variant
from digest.rendering.inlining import PREMAILER_OPTIONS, inline_css
from digest.rendering.personalisation import Recipient


def _digest_html() -> str:
    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Digest")
    item = {
        "id": "s1", "title": "Trial", "key_takeaway": "A helps.", "summary": "Detail.", "patient_summary": "Plain.",
        "study_type": "randomised controlled trial", "sample_size": 1200, "evidence_level": 2,
        "study_published": "2026-10", "outcomes": [], "safety": "Safe.", "source_url": "https://example.org/s1",
        "published_at": "2026-11-26", "why": ["Cardiology"],
    }  # fmt: skip
    variant = Variant(
        "clinician",
        (item,),
        ("Cardiology",),
        {"id": 1, "subject": "", "preheader": "", "intro_html": "", "intro_text": "", "web_url": ""},
    )
    recipient = Recipient("a@example.org", "Ann", "https://x/unsubscribe/t", "https://x/preferences/t")
    return renderer.render_uninlined(variant, recipient.values()).html


def test_inlining_matches_stock_premailer_on_first_and_cached_calls() -> None:
    html = _digest_html()
    stock = Premailer(html, **PREMAILER_OPTIONS).transform(pretty_print=False)
    assert inline_css(html) == stock
    assert inline_css(html) == stock  # second call: parsed stylesheet from the cache
    assert "@media" in stock and "!important" in stock
