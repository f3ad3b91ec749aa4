"""The two editions of the digest as rendered: what leads, what is left out, what each reader is told."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from digest.rendering.compiled import EmailRenderer
from digest.rendering.compose import build_variant
from digest.rendering.personalisation import Recipient
from tests.factories import SAMPLE_ISSUE, SAMPLE_RECIPIENT, sample_summaries, sample_variant


@pytest.fixture
def renderer() -> EmailRenderer:
    return EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")


class _Outline(HTMLParser):
    """Headings, the text of each item's lead box, and the visible text, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.leads: list[str] = []
        self.visible: list[str] = []
        self._stack: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"meta", "br", "hr", "img", "link"}:
            return
        a = dict(attrs)
        self._stack.append((tag, a))
        if tag in {"h1", "h2", "h3"}:
            self.headings.append(tag)
        if "takeaway" in (a.get("class") or "").split():
            self.leads.append("")

    def handle_endtag(self, tag: str) -> None:
        while self._stack and self._stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        classes = {c for _, a in self._stack for c in (a.get("class") or "").split()}
        if {"preheader"} & classes or any(t in {"style", "title"} for t, _ in self._stack):
            return
        if "takeaway" in classes and "takeaway-label" not in classes:
            self.leads[-1] += data
        self.visible.append(data)


def _outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    return parser


def test_patient_edition_leads_with_plain_language_without_statistics(renderer: EmailRenderer) -> None:
    variant = sample_variant("patient")
    out = renderer.render(variant, SAMPLE_RECIPIENT)
    outline = _outline(out.html)

    assert outline.leads == [item["patient_summary"] for item in variant.items]
    assert 'class="outcomes"' not in out.html and '<table class="outcomes' not in out.html
    for jargon in ("HR ", "RR ", "95% CI", ">p<", "Evidence level", "Key takeaway"):
        assert jargon not in out.html, jargon
    assert out.html.count("talk it over with your care team") == len(variant.items)
    assert "put into treatment groups by chance" in out.html  # a randomised trial, in words
    assert "Each one starts with what it means for patients." in out.html
    # The preheader (the inbox preview line) is plain language too.
    assert variant.items[0]["patient_summary"][:60] in out.html.split('class="preheader"')[1].split("</div>")[0]
    assert "They do not replace advice from your own doctor" in out.text
    assert "HR " not in out.text and "What this means for patients: " in out.text


def test_clinician_edition_leads_with_key_takeaway_and_has_the_outcomes_table(renderer: EmailRenderer) -> None:
    variant = sample_variant("clinician")
    out = renderer.render(variant, SAMPLE_RECIPIENT)
    outline = _outline(out.html)

    assert outline.leads == [item["key_takeaway"] for item in variant.items]
    with_outcomes = sum(1 for item in variant.items if item["outcomes"])
    assert out.html.count('<table class="outcomes"') == with_outcomes > 0
    assert out.html.count("<caption") == with_outcomes
    assert '<th scope="col"' in out.html and '<th scope="row"' in out.html
    assert "Evidence levels:</strong> 1 = systematic review" in out.html  # legend in the footer
    assert "· n = 1,766 · Evidence level 2" in out.html  # the study badge
    assert (
        "0.60 to 0.94" in out.html and "(95% CI 0.60 to 0.94)" in out.text
    )  # the float 0.6, shown to its CI's precision


@pytest.mark.parametrize("edition", ["clinician", "patient"])
def test_every_item_says_why_and_the_digest_opens_with_an_overview(renderer: EmailRenderer, edition: str) -> None:
    summaries = [s for s in sample_summaries(40) if [x.slug for x in s.specialties] == ["oncology"]][:1] + [
        s for s in sample_summaries(40) if {x.slug for x in s.specialties} == {"hematology", "oncology"}
    ][:1]
    assert len(summaries) == 2
    variant = build_variant(
        edition, summaries, {"hematology": "Hematology", "oncology": "Oncology", "surgery": "Surgery"}, SAMPLE_ISSUE
    )
    out = renderer.render(variant, SAMPLE_RECIPIENT)

    assert "2 new summaries for Hematology and Oncology." in out.text
    assert "2 new summaries for Hematology and Oncology." in out.html
    assert ">Oncology, your specialty</p>" in out.html
    assert ">Hematology and Oncology, your specialties</p>" in out.html
    assert _outline(out.html).headings == ["h1", "h2", "h2"]


def test_the_html_of_eight_long_summaries_stays_under_gmail_clipping(renderer: EmailRenderer) -> None:
    """Gmail clips messages over 102 KB; the eight longest sample summaries, with outcomes, stay under 100 KB."""
    longest = sorted(
        sample_summaries(100), key=lambda s: -(len(s.key_takeaway) + len(s.safety or "") + 200 * len(s.outcomes))
    )[:8]
    for edition in ("clinician", "patient"):
        variant = build_variant(
            edition, longest, {x.slug: x.name for s in longest for x in s.specialties}, SAMPLE_ISSUE
        )
        assert len(renderer.render(variant, SAMPLE_RECIPIENT).html.encode()) < 100 * 1024


@pytest.mark.parametrize(
    ("study_type", "expected", "never"),
    [
        ("randomised controlled trial", "put into treatment groups by chance", "link, not proof"),
        ("non-randomised trial", "were not chosen by chance", "groups by chance, the fairest"),
        ("meta-analysis", "pooled the results of several studies", "by chance"),
        ("cohort study", "followed 1,200 people over time", "by chance"),
        ("case-control study", "people who had a condition with people who did not", "by chance"),
        ("cross-sectional study", "at one point in time", "by chance"),
        ("Phase 3 RCT-like design", "A research study of 1,200 people", "Rct"),
    ],
)
def test_study_type_is_explained_in_words_for_patients(
    renderer: EmailRenderer, study_type: str, expected: str, never: str
) -> None:
    summary = sample_summaries(1)[0]
    summary.study_type, summary.sample_size = study_type, 1200
    variant = build_variant("patient", [summary], {x.slug: x.name for x in summary.specialties}, SAMPLE_ISSUE)
    out = renderer.render(variant, SAMPLE_RECIPIENT)
    assert expected in out.html and expected in out.text
    assert never not in out.html


def test_clinician_study_badge_keeps_acronyms(renderer: EmailRenderer) -> None:
    summary = sample_summaries(1)[0]
    summary.study_type = "RCT, open label"
    variant = build_variant("clinician", [summary], {x.slug: x.name for x in summary.specialties}, SAMPLE_ISSUE)
    assert "RCT, open label · n = " in renderer.render(variant, SAMPLE_RECIPIENT).text


def test_one_render_pass_per_variant_whatever_the_number_of_recipients(renderer: EmailRenderer) -> None:
    recipients = [
        Recipient(f"r{n}@example.org", f"Reader {n}", f"https://d.example/u/{n}", f"https://d.example/p/{n}")
        for n in range(12)
    ]
    variants = {edition: sample_variant(edition, 3) for edition in ("clinician", "patient")}
    sent = {}
    for n, recipient in enumerate(recipients):
        edition = "patient" if n % 3 == 0 else "clinician"
        sent[recipient.email] = renderer.render(variants[edition], recipient)
    assert renderer.passes == 2  # two editions of the same summaries: two variants
    # Personalised output is what rendering that recipient alone gives, byte for byte.
    alone = renderer.render_alone(variants["patient"], recipients[0])
    assert (sent[recipients[0].email].html, sent[recipients[0].email].text) == (alone.html, alone.text)
