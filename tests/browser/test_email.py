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
    assert headings == ["H1"] + ["H2"] * 9  # one h1, "In this issue", then one h2 per summary
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


def _luminance(rgb: str) -> float:
    """WCAG relative luminance of a computed ``rgb(r, g, b)`` colour."""
    channels = [int(c) / 255 for c in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, two: str) -> float:
    high, low = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_confirmation_email_takes_its_dark_palette_readably(
    width: int, new_page: Callable[[int, Scheme], Page]
) -> None:
    """In a dark-scheme mail client the confirmation email's column and text turn dark-mode colours
    (not the light ones); text, the spelled-out address and the button keep 4.5:1 in both schemes."""
    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")
    html = renderer.render_email(
        "confirm",
        {
            "confirm_url": "https://digest.example.org/confirm/" + "x" * 120,
            "preferences_url": "https://digest.example.org/preferences/p",
            "already_subscribed": False,
            "email": "reader@example.org",
            "valid_days": 7,
            "choices": None,
        },
    ).html
    colours = {}
    for scheme in SCHEMES:
        page = new_page(width, scheme)
        load(page, html=html)
        colours[scheme] = page.evaluate(
            """() => {
              const c = document.querySelector('.container'), button = c.querySelector('a.button');
              const leaf = s => [...c.querySelectorAll('p, td, span')].filter(e => e.innerText.includes(s)).pop();
              const colour = e => getComputedStyle(e).color;
              const back = e => getComputedStyle(e).backgroundColor;
              return {background: back(c), body: back(document.body),
                      text: colour(leaf('reader@example.org')), url: colour(leaf('/confirm/')),
                      button: colour(button), button_background: back(button)};
            }"""
        )
    light, dark = colours["light"], colours["dark"]
    assert dark["background"] == "rgb(24, 33, 43)" and dark["body"] == "rgb(16, 22, 29)", dark
    for key in ("background", "text", "body"):
        assert light[key] != dark[key], (key, light, dark)
    assert _luminance(dark["background"]) < 0.05 < _luminance(light["background"])
    for scheme, got in colours.items():
        assert _contrast(got["text"], got["background"]) >= 4.5, (scheme, got)
        assert _contrast(got["url"], got["background"]) >= 4.5, (scheme, got)
        assert _contrast(got["button"], got["button_background"]) >= 4.5, (scheme, got)
