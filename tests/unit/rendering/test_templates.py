"""The email templates keep the rules of docs/templates.md: every HTML email extends the one base, and
every row of a digest's container is a card between the caching markers (a row outside them would be
inlined again with the skeleton of every variant, and a reader's text in it would be cached)."""

from __future__ import annotations

import re

import pytest
from lxml import html as lxml_html

from digest.rendering.compiled import EmailRenderer
from digest.resources import template_loader
from tests.unit.rendering.test_inlining import _variant

RECIPIENT = {
    "greeting": "Hi Ann,",
    "unsubscribe_url": "https://d.example.org/u/t",
    "preferences_url": "https://d.example.org/p/t",
    "email": "ann@example.org",
    "click_base": "https://d.example.org/r/9/",
}


def _html_templates() -> list[str]:
    return sorted(
        name
        for name in template_loader().list_templates()
        if name.startswith("email/") and name.endswith(".html.j2") and not name.startswith("email/_")
    )


@pytest.mark.parametrize("name", _html_templates())
def test_every_html_email_extends_the_base(name: str) -> None:
    source, _, _ = template_loader().get_source(EmailRenderer(base_url="", list_name="").env, name)
    assert source.startswith('{% extends "email/_base.html.j2" %}\n'), name


@pytest.mark.parametrize("edition", ["clinician", "patient"])
def test_every_row_of_the_container_is_a_card_between_the_markers(edition: str) -> None:
    renderer = EmailRenderer(base_url="https://d.example.org", list_name="Digest", link_signer=lambda url: "sig")
    variant = _variant(edition, [1, 2, 3], campaign=True)  # a campaign: the intro row too
    marked = renderer.render_uninlined(variant, RECIPIENT, marked=renderer.marked_text()).html
    opening, closing = (re.escape(mark) for mark in renderer._blocks.marks)
    container = re.search(r'class="container"[^>]*>(.*?)</table>\n<!--\[if mso\]>', marked, re.S)
    assert container is not None
    cards = re.findall(f"{opening}(.*?){closing}", container.group(1), re.S)
    assert [re.findall(r'^<tr><td class="([a-z]+)">', card) for card in cards] == [
        ["masthead"],
        ["lead"],
        ["intro"],
        ["item"],
        ["item"],
        ["item"],
        ["footer"],
    ]
    assert re.sub(f"{opening}.*?{closing}", "", container.group(1), flags=re.S).strip() == ""
    # The variant's own text is a marker in the cards: the subject in the masthead, the overview in the lead.
    assert "HFpEF" not in marked and "Cardiology and Oncology" not in marked


def test_the_confirmation_has_the_frame_of_the_base() -> None:
    renderer = EmailRenderer(base_url="https://d.example.org", list_name="Digest")
    email = renderer.render_email(
        "confirm",
        {
            "confirm_url": "https://d.example.org/c/x",
            "preferences_url": "https://d.example.org/p/y",
            "already_subscribed": False,
            "email": "ann@example.org",
            "valid_days": 7,
        },
    )
    doc = lxml_html.document_fromstring(email.html)
    article = doc.find(".//div[@role='article']")
    assert article is not None and article.get("aria-label") == email.subject
    assert doc.find(".//title").text == email.subject
    [row] = doc.xpath("//table[contains(@class, 'container')]/tr/td")
    assert row.get("class") == "body" and "Confirm my subscription" in row.text_content()
    assert ":block-->" not in email.html  # no caching markers in a one-off render
