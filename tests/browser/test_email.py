"""The digest email in a real browser: axe-core finds no serious or critical violation in either
edition, light or dark, narrow or wide; the layout is fluid (no horizontal scroll at 375px, a 600px
column on wider screens); the dark-mode block applies. Screenshots go to tests/artifacts/email/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from digest.rendering.compiled import EmailRenderer
from tests.browser.a11y import audit, describe, load
from tests.browser.conftest import Scheme
from tests.factories import SAMPLE_RECIPIENT, sample_variant

EDITIONS = ("clinician", "patient")
SCHEMES: tuple[Scheme, ...] = ("light", "dark")
WIDTHS = (375, 1280)


@pytest.fixture(scope="module")
def email_html() -> dict[str, str]:
    """The HTML part of an 8-summary digest in each edition, as it is sent."""
    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")
    return {edition: renderer.render(sample_variant(edition), SAMPLE_RECIPIENT).html for edition in EDITIONS}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("edition", EDITIONS)
def test_no_serious_violations_and_screenshot(
    edition: str,
    scheme: Scheme,
    width: int,
    email_html: dict[str, str],
    new_page: Callable[[int, Scheme], Page],
    artifacts: Path,
) -> None:
    page = new_page(width, scheme)
    violations = audit(page, html=email_html[edition])
    assert not violations, f"{edition} digest, {scheme}, {width}px:\n{describe(violations)}"

    out = artifacts / "email" / f"digest-{edition}-{width}-{scheme}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 0


@pytest.mark.parametrize("edition", EDITIONS)
def test_no_horizontal_scroll_at_375px(
    edition: str, email_html: dict[str, str], new_page: Callable[[int, Scheme], Page]
) -> None:
    page = new_page(375)
    load(page, html=email_html[edition])
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # Nothing inside pokes out of the column either (a wide outcomes table would).
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('.container *')].map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= 375


@pytest.mark.parametrize("edition", EDITIONS)
def test_600px_column_on_wider_screens(
    edition: str, email_html: dict[str, str], new_page: Callable[[int, Scheme], Page]
) -> None:
    page = new_page(640)
    load(page, html=email_html[edition])
    assert page.evaluate("document.querySelector('table.container').getBoundingClientRect().width") == 600


def test_dark_scheme_applies_the_dark_palette(
    email_html: dict[str, str], new_page: Callable[[int, Scheme], Page]
) -> None:
    backgrounds = {}
    for scheme in SCHEMES:
        page = new_page(640, scheme)
        load(page, html=email_html["clinician"])
        backgrounds[scheme] = page.evaluate(
            "getComputedStyle(document.querySelector('table.container')).backgroundColor"
        )
    assert backgrounds == {"light": "rgb(255, 255, 255)", "dark": "rgb(24, 33, 43)"}


@pytest.mark.parametrize("edition", EDITIONS)
def test_structure_for_assistive_technology(
    edition: str, email_html: dict[str, str], new_page: Callable[[int, Scheme], Page]
) -> None:
    page = new_page(640)
    load(page, html=email_html[edition])
    assert page.evaluate("document.documentElement.lang") == "en"
    headings = page.evaluate("[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => h.tagName)")
    assert headings == ["H1"] + ["H2"] * 8  # one h1, then one h2 per summary
    # role="presentation" on layout tables only; data tables (outcomes) keep their semantics.
    roles = page.evaluate("[...document.querySelectorAll('table')].map(t => [t.className, t.getAttribute('role')])")
    for cls, role in roles:
        assert (role == "presentation") == (cls != "outcomes"), (cls, role)
    if edition == "clinician":
        assert (
            page.evaluate("document.querySelectorAll('table.outcomes caption').length")
            == page.evaluate("document.querySelectorAll('table.outcomes').length")
            > 0
        )
    # Every link says where it goes without its surroundings.
    texts = page.evaluate("[...document.querySelectorAll('a')].map(a => a.textContent.trim())")
    assert texts and all(
        len(t) >= 12 and t.lower() not in {"click here", "here", "read more", "link"} for t in texts
    ), texts


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_confirmation_email_on_the_same_frame_has_no_serious_violations(
    scheme: Scheme, width: int, new_page: Callable[[int, Scheme], Page]
) -> None:
    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")
    context = {
        "confirm_url": "https://digest.example.org/confirm/token",
        "preferences_url": "https://digest.example.org/preferences/token",
        "email": "reader@example.org",
        "valid_days": 7,
    }
    for already in (False, True):
        page = new_page(width, scheme)
        html = renderer.render_email("confirm", {**context, "already_subscribed": already}).html
        violations = audit(page, html=html)
        assert not violations, (
            f"confirmation (already subscribed: {already}), {scheme}, {width}px:\n{describe(violations)}"
        )
