"""Subjects that fit a phone: the rule of digest/rendering/subjects.py, measured on the sample data."""

from __future__ import annotations

import statistics

import pytest

from digest.rendering.compiled import EmailRenderer
from digest.rendering.subjects import LEAD_MAX, digest_subject, shorten
from tests.factories import SAMPLE_ISSUE, SAMPLE_RECIPIENT, sample_summaries, sample_variant


@pytest.fixture
def renderer() -> EmailRenderer:
    return EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")


def test_one_specialty_names_its_digest_with_date_lead_and_count() -> None:
    subject = digest_subject(
        "Clinical evidence digest",
        ["Cardiology"],
        "5 Dec",
        "Transcatheter versus surgical aortic-valve replacement in low-risk patients: five-year outcomes",
        3,
    )
    assert subject.startswith("Cardiology digest, 5 Dec: Transcatheter versus")
    assert subject.endswith("\u2026 + 3 more")
    assert len(subject.removesuffix(" + 3 more")) <= LEAD_MAX


def test_a_short_headline_is_kept_whole_and_one_item_has_no_count() -> None:
    assert digest_subject("Digest", ["Oncology", "Surgery"], "5 Dec", "A short title", 0) == (
        "Digest, 5 Dec: A short title"
    )


def test_shorten_cuts_after_a_whole_word() -> None:
    assert shorten("alpha beta gamma delta", 14) == "alpha beta\u2026"
    assert shorten("alpha", 14) == "alpha"


@pytest.mark.parametrize("edition", ["clinician", "patient"])
def test_every_sample_subject_fits_a_phone_and_shows_the_count(renderer: EmailRenderer, edition: str) -> None:
    """Each sample summary as the lead of an 8-item digest: at most 70 characters, "+ 7 more" kept."""
    lengths = []
    summaries = sample_summaries(16)
    for lead in range(len(summaries)):
        chosen = [summaries[lead], *(s for i, s in enumerate(summaries) if i != lead)][:8]
        specialties = {s.slug: s.name for row in chosen for s in row.specialties}
        from digest.rendering.compose import build_variant

        variant = build_variant(edition, chosen, specialties, {**SAMPLE_ISSUE, "date": "5 Dec"})
        subject = renderer.render(variant, SAMPLE_RECIPIENT).subject
        more = len(variant.items) - 1
        assert subject.endswith(f" + {more} more") and len(subject) <= LEAD_MAX + 10, subject
        assert ", 5 Dec: " in subject
        lengths.append(len(subject))
    assert statistics.median(lengths) <= 70


def test_a_campaign_keeps_the_editors_subject(renderer: EmailRenderer) -> None:
    variant = sample_variant("clinician", 3, {**SAMPLE_ISSUE, "subject": "Our picks for December", "date": "5 Dec"})
    assert renderer.render(variant, SAMPLE_RECIPIENT).subject == "Our picks for December"
