"""The shared-variant path (render once, inline once, personalise after) gives the same bytes as
rendering one subscriber alone, whatever their name and links contain."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from digest.rendering.compiled import EmailRenderer, Variant, item_view
from digest.rendering.personalisation import Recipient

NAMES = [
    'Zoë "Q" O\'Brien & <Co>',
    "Ångström Ünal",
    "李 小龙",
    "A&amp;B <script>alert(1)</script>",
    "%%deadbeef:greeting%%",
    "Dr. José-María Núñez",
    "",
]


def _variant(edition: str) -> Variant:
    summary = SimpleNamespace(
        id="s-1",
        title='Drug A & <b>B</b> in "heart failure"',
        key_takeaway="Drug A lowered the risk (HR 0.80) — café-grade evidence",
        summary="A randomised trial.",
        patient_summary="In plain words: it helped.",
        study_type="randomised controlled trial",
        sample_size=4321,
        evidence_level=2,
        study_published="2026-01",
        outcomes=[],
        safety="No excess harm.",
        source_url="https://example.org/s?a=1&b=2",
        published_at="2026-11-26T09:00:00Z",
    )
    issue = {"id": 1, "subject": "", "preheader": "", "intro_html": "", "intro_text": "", "web_url": ""}
    return Variant(
        edition=edition, items=(item_view(summary, ["Cardiology"]),), specialties=("Cardiology",), issue=issue
    )


@pytest.mark.parametrize("edition", ["clinician", "patient"])
@pytest.mark.parametrize("name", NAMES)
def test_personalised_output_equals_rendering_alone(name: str, edition: str) -> None:
    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")
    recipient = Recipient(
        email="zo.e+tag@example.org",
        name=name,
        unsubscribe_url='https://digest.example.org/unsubscribe/tok&en"<é>',
        preferences_url="https://digest.example.org/preferences/abc_DEF-123",
    )
    variant = _variant(edition)

    shared = renderer.render(variant, recipient)
    alone = renderer.render_alone(variant, recipient)

    assert shared.html == alone.html
    assert shared.text == alone.text
    assert shared.subject == alone.subject
    first = name.split()[0] if name.split() else ""
    if first and "<" not in first and "&" not in first:
        assert f"Hi {first}," in shared.text
    assert "<script>" not in shared.html
