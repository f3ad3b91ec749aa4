"""Inlining a block at a time (each card and frame row once per process, each skeleton once) gives
the bytes premailer gives for the whole document: for digests and campaigns, both editions, cards
with and without outcomes, and blocks and skeletons met again in other variants (cache hits). The
cached stylesheet work gives byte for byte what stock premailer gives."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from markupsafe import Markup, escape
from premailer import Premailer

from digest.rendering.compiled import EmailRenderer, Variant, item_view
from digest.rendering.inlining import PREMAILER_OPTIONS, BlockInliner, VariantText, inline_css
from digest.rendering.personalisation import Recipient

OUTCOMES = [
    {"name": "Death from any cause", "measure": "HR", "value": 0.8, "ci_low": 0.71, "ci_high": 0.9, "p": "<0.001"},
    {"name": "Hospital stay", "measure": "MD", "value": -1.5},
]


def _summary(n: int, *, outcomes: bool) -> Any:
    return SimpleNamespace(
        id=f"s-{n}", title=f"Trial {n}: drug A & <b>B</b>", key_takeaway=f"Takeaway {n} — café", summary="Detail.",
        patient_summary=f"Plain words {n}.", study_type="randomised controlled trial" if n % 2 else "cohort study",
        sample_size=1000 + n, evidence_level=2, study_published="2026-01", outcomes=OUTCOMES if outcomes else [],
        safety="No excess harm." if n % 3 else None, source_url=f"https://example.org/s/{n}?a=1&b=2",
        published_at="2026-11-26T09:00:00Z",
    )  # fmt: skip


def _variant(edition: str, numbers: list[int], *, campaign: bool) -> Variant:
    items = tuple(item_view(_summary(n, outcomes=n % 2 == 0), ["Cardiology"] if n % 4 else []) for n in numbers)
    issue = {
        "id": 7,
        "subject": 'Heart failure: "HFpEF" & <new> trials, it\'s here' if campaign else "",
        "preheader": "",
        "track_clicks": campaign,
        "intro_html": "<p>This week: <strong>three</strong> trials.</p>" if campaign else "",
        "intro_text": "This week: three trials." if campaign else "",
        "web_url": "https://d.example.org/issues/7" if campaign else "",
    }
    return Variant(edition=edition, items=items, specialties=("Cardiology", "Oncology"), issue=issue)


@pytest.mark.parametrize("campaign", [False, True])
@pytest.mark.parametrize("edition", ["clinician", "patient"])
def test_variants_sharing_blocks_equal_whole_document_inlining(edition: str, campaign: bool) -> None:
    renderer = EmailRenderer(
        base_url="https://d.example.org", list_name="Digest", link_signer=lambda url: f"sig.{len(url)}"
    )
    recipient = Recipient(
        "ann@example.org", "Ann", "https://d.example.org/u/t", "https://d.example.org/p/t", "https://d.example.org/r/9/"
    )
    # The later variants reuse cards of the first (in another order, and alone); the last has the
    # first one's skeleton (same first summary, same count) with other cards.
    for numbers in ([1, 2, 3, 4, 5, 6, 7, 8], [8, 3, 1, 9], [2], [1, 9, 10, 11, 12, 13, 14, 15]):
        variant = _variant(edition, numbers, campaign=campaign)
        shared = renderer.render(variant, recipient)
        alone = renderer.render_alone(variant, recipient)  # one premailer call over the whole document
        assert shared.html == alone.html
        assert shared.text == alone.text
    assert renderer._blocks.marks[0] not in shared.html and "slot-->" not in shared.html


def test_block_inliner_against_premailer_on_the_whole_document() -> None:
    renderer = EmailRenderer(base_url="https://d.example.org", list_name="Digest")
    values = Recipient("b@example.org", "", "https://d.example.org/u/x", "https://d.example.org/p/x").values()
    calls = 0
    # Other specialties, another order, another first summary: the blocks and the skeleton are the
    # same, only the variant's text differs.
    for numbers, specialties in (
        ([1, 2, 3], ("Cardiology",)),
        ([1, 2, 3], ("Cardiology", "Oncology")),
        ([3, 1, 2], ("A & <B>",)),
        ([1, 4, 5], ()),
    ):
        variant = replace(_variant("clinician", numbers, campaign=False), specialties=specialties)
        texts = renderer.marked_text()
        marked = renderer.render_uninlined(variant, values, marked=texts).html
        plain = renderer.render_uninlined(variant, values).html
        assert marked.count(renderer._blocks.marks[0]) == 3 + 3  # the cards, masthead, lead and footer
        before = len(renderer._blocks._skeletons)
        assert texts.fill(renderer._blocks.inline(marked)) == inline_css(plain)
        calls += len(renderer._blocks._skeletons) - before
    assert calls == 1  # one skeleton inlined for the three documents whose blocks were all known


def test_variant_text_not_marking_writes_what_autoescape_writes() -> None:
    texts = VariantText(None)
    assert texts("a < b & 'c'") == escape("a < b & 'c'")
    assert texts(Markup("<b>kept</b>")) == Markup("<b>kept</b>")
    assert texts.fill("unchanged") == "unchanged"


def test_inlining_matches_stock_premailer_on_first_and_cached_calls() -> None:
    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Digest")
    recipient = Recipient("a@example.org", "Ann", "https://x/unsubscribe/t", "https://x/preferences/t")
    html = renderer.render_uninlined(_variant("clinician", [1, 2], campaign=False), recipient.values()).html
    stock = Premailer(html, **PREMAILER_OPTIONS).transform(pretty_print=False)
    assert inline_css(html) == stock
    assert inline_css(html) == stock  # second call: parsed stylesheet from the cache
    assert "@media" in stock and "!important" in stock


def test_a_block_cache_smaller_than_a_document_still_gives_whole_document_bytes() -> None:
    """Blocks found in the cache are taken before the new ones are stored: with room for one block,
    every insertion drops one that the same document still needs."""
    renderer = EmailRenderer(base_url="https://d.example.org", list_name="Digest")
    renderer._blocks = BlockInliner(renderer._nonce, 1)
    recipient = Recipient("ann@example.org", "Ann", "https://d.example.org/u/t", "https://d.example.org/p/t")
    for numbers in ([1, 2, 3], [3, 2, 1, 4], [4, 1]):
        variant = _variant("clinician", numbers, campaign=False)
        assert renderer.render(variant, recipient).html == renderer.render_alone(variant, recipient).html
