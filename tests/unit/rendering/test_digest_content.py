"""What a digest carries besides its items: "In this issue", the patient title, "Editor's pick",
the postal address, and a plain-text part with numbered links instead of raw tracking URLs."""

from __future__ import annotations

from dataclasses import replace

from lxml import html as lxml_html

from digest.rendering.compiled import EmailRenderer
from digest.rendering.compose import build_variant
from tests.factories import SAMPLE_ISSUE, SAMPLE_RECIPIENT, sample_summaries

ADDRESS = "Evidence Press Ltd, 1 Example Street, Springfield 12345"


def _renderer(**kw: object) -> EmailRenderer:
    return EmailRenderer(
        base_url="https://digest.example.org", list_name="Clinical evidence digest", postal_address=ADDRESS, **kw
    )


def _variant(edition: str, count: int = 4, **issue: object):  # type: ignore[no-untyped-def]
    summaries = sample_summaries(count)
    specialties = {s.slug: s.name for row in summaries for s in row.specialties}
    return build_variant(edition, summaries, specialties, {**SAMPLE_ISSUE, **issue})


def test_in_this_issue_lists_every_headline_first_with_links_to_the_items() -> None:
    variant = _variant("clinician")
    out = _renderer().render(variant, SAMPLE_RECIPIENT)
    doc = lxml_html.fromstring(out.html)
    toc = doc.xpath("//td[@class='toc']")[0]
    assert toc.xpath("string(.//h2)") == "In this issue"
    assert [a.text_content() for a in toc.iter("a")] == [i["title"] for i in variant.items]
    for n, a in enumerate(toc.iter("a"), start=1):
        assert a.get("href") == f"#item-{n}" and doc.xpath(f"//td[@id='item-{n}']")
    # Before the first item, in both parts.
    assert out.html.index("In this issue") < out.html.index('id="item-1"')
    text = out.text
    assert text.index("In this issue:") < text.index("Key takeaway:")


def test_the_patient_edition_uses_the_plain_title_and_falls_back_to_the_title() -> None:
    summaries = sample_summaries(3)
    summaries[0].patient_title = "A lower dose of a blood thinner worked as well after cancer-related clots"
    specialties = {s.slug: s.name for row in summaries for s in row.specialties}
    patient = build_variant("patient", summaries, specialties, {**SAMPLE_ISSUE, "date": "5 Dec"})
    out = _renderer().render(patient, SAMPLE_RECIPIENT)
    titles = [h.text_content() for h in lxml_html.fromstring(out.html).xpath("//h2[@class='title']")]
    assert titles == [summaries[0].patient_title, summaries[1].title, summaries[2].title]
    assert ", 5 Dec: A lower dose of a blood" in out.subject
    clinician = _renderer().render(build_variant("clinician", summaries, specialties, SAMPLE_ISSUE), SAMPLE_RECIPIENT)
    assert summaries[0].patient_title not in clinician.html and summaries[0].title in clinician.html


def test_pinned_items_are_labelled_editors_pick() -> None:
    variant = _variant("clinician", pinned=[sample_summaries(4)[1].id])
    out = _renderer().render(variant, SAMPLE_RECIPIENT)
    doc = lxml_html.fromstring(out.html)
    picks = doc.xpath("//p[@class='pick']")
    assert [p.text_content() for p in picks] == ["Editor's pick"]
    assert picks[0].xpath("ancestor::td[1]/@id") == ["item-2"]
    assert out.text.count("Editor's pick") == 1


def test_the_postal_address_is_in_every_footer() -> None:
    out = _renderer().render(_variant("patient"), SAMPLE_RECIPIENT)
    footer = lxml_html.fromstring(out.html).xpath("//td[@class='footer']")[0]
    assert ADDRESS in footer.text_content() and ADDRESS in out.text
    confirm = _renderer().render_email(
        "confirm",
        {
            "confirm_url": "https://d/confirm/x",
            "preferences_url": "https://d/p",
            "already_subscribed": False,
            "email": "a@example.org",
            "valid_days": 7,
            "choices": None,
        },
    )
    assert ADDRESS in confirm.html and ADDRESS in confirm.text


def test_the_text_part_numbers_tracked_links_and_lists_them_at_the_end() -> None:
    renderer = _renderer(link_signer=lambda url: url.rsplit("/", 1)[-1] + "X" * 150)
    variant = _variant("clinician", 3, track_clicks=True)
    recipient = replace(SAMPLE_RECIPIENT, click_base="https://digest.example.org/r/" + "Y" * 40 + ".")
    text = renderer.render(variant, recipient).text
    body, links = text.split("\nLinks\n")
    assert "Full summary: [1]" in body and "Full summary: [3]" in body and "XXXX" not in body
    assert links.strip().splitlines()[0].startswith("[1] https://digest.example.org/r/")
    assert "/r/" not in body  # no tracking URL inside what a reader reads


def test_the_postal_address_is_in_every_kind_of_email() -> None:
    """Digest, campaign, correction notice, safety alert (all from the digest template,
    tested here by kind) and the confirmation: the address in the HTML footer and the text part."""
    kinds = {
        "digest": _variant("clinician"),
        "campaign": _variant("clinician", subject="Winter picks", intro="Three trials worth your time."),
        "correction": _variant("clinician", 1, notice={"kind": "correction", "note": "The HR was 0.80."}),
        "alert": _variant("patient", 1, notice={"kind": "alert", "note": "Check liver function first."}),
    }
    for kind, variant in kinds.items():
        out = _renderer().render(variant, SAMPLE_RECIPIENT)
        footer = lxml_html.fromstring(out.html).xpath("//td[@class='footer']")
        assert footer and ADDRESS in footer[0].text_content(), kind
        assert ADDRESS in out.text, kind
        if kind in ("correction", "alert"):
            assert variant.issue["notice"]["note"] in out.text, kind  # it is the notice that was rendered
    confirm = _renderer().render_email(
        "confirm",
        {
            "confirm_url": "https://d/confirm/x",
            "preferences_url": "https://d/p",
            "already_subscribed": True,
            "email": "a@example.org",
            "valid_days": 7,
            "choices": None,
        },
    )
    assert ADDRESS in confirm.html and ADDRESS in confirm.text
