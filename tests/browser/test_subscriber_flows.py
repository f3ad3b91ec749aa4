"""A subscriber's whole path in Chromium (Debian's) at 375 and 1280 px, against the app on loopback and
a real SMTP server: a sign-up with mistakes (errors in plain words next to their field, focus on the
first), the weekday picker only for weekly, the time zone typed as a city, the confirmation email
(no element wider than a phone), the confirmed page, the preference centre, unsubscribing and
subscribing again. On every page: no horizontal scroll, every target at least 44 px tall."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.models import Subscriber, SubscriberStatus
from digest.subscribers.tokens import Purpose
from digest.wiring import Services, build_services
from tests.browser.conftest import Scheme
from tests.browser.live import loopback_settings, serving
from tests.browser.targets import assert_fits
from tests.conftest import Clock

WIDTHS = (375, 1280)
MIN_TARGET = 44

# Controls a finger aims at: every button, field and option row, the links of link rows, footers
# and the error summary (links inside a sentence are exempt, as WCAG 2.5.5 allows).
TARGETS = (
    "button, select, input[type=email], input[type=text], label.option, "
    "footer a, .links a, .error-summary a, .footer-links a"
)

SMALL_TARGETS = """(selector) => [...document.querySelectorAll(selector)]
  .filter(e => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .map(e => ({what: e.outerHTML.slice(0, 80), height: e.getBoundingClientRect().height}))
  .filter(t => t.height < MIN)""".replace("MIN", str(MIN_TARGET))

TOO_WIDE = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getClientRects().length
    && e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
  .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


@pytest.fixture
def site(settings: Settings, clock: Clock) -> Iterator[tuple[str, Services]]:
    from workers import app as worker_app
    from workers import tasks

    live = loopback_settings(settings)
    services = build_services(live, clock=clock)
    worker_app.configure(live)
    tasks.use_services(services)
    with serving(services) as url:
        yield url, services
    tasks.use_services(None)
    services.close()


def _fits(page: Page, width: int, what: str) -> None:
    """No sideways scroll; every control (any link, button, field, summary, and the label of each
    checkbox and radio, whatever its class: tests/browser/targets.py) and every link of a link row or
    footer at least 44 px tall."""
    assert_fits(page, width, what)
    small = page.evaluate(SMALL_TARGETS, TARGETS)
    assert small == [], f"{what}: targets under {MIN_TARGET}px at {width}px: {small}"


def _focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def _error_next_to(page: Page, field_id: str, error_id: str) -> None:
    """The message is visible, just above its field (or above the first option of a group), within 60px."""
    error = page.locator(f"#{error_id}")
    assert error.is_visible()
    box = error.bounding_box()
    field = page.locator(f"#{field_id}").bounding_box()
    assert box is not None and field is not None
    assert 0 <= field["y"] - (box["y"] + box["height"]) <= 60, (error_id, box, field)


@pytest.mark.parametrize("width", WIDTHS)
def test_sign_up_mistakes_are_explained_next_to_the_field_with_focus(
    site: tuple[str, Services], new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, width: int
) -> None:
    url, services = site
    page = new_page(width, "light")
    page.goto(url + "/")
    _fits(page, width, "sign-up form")
    assert not page.locator("#send_weekday").is_visible()  # daily is the default
    page.locator("label.option", has_text="Weekly").click()
    assert page.locator("#send_weekday").is_visible()
    page.locator("label.option", has_text="Daily").click()
    assert not page.locator("#send_weekday").is_visible()

    page.locator("#timezone").fill("Mars/Base")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    alert = page.get_by_role("alert")
    assert "There are 3 problems" in alert.inner_text()
    for raw in ("List should have", "after validation", "invalid email address"):
        assert raw not in page.content()
    assert _focused_id(page) == "email"
    assert page.locator("#email-error").text_content() == "Error: Enter your email address."
    _error_next_to(page, "email", "email-error")
    _error_next_to(page, "specialty-0", "specialties-error")
    _error_next_to(page, "timezone", "timezone-error")
    assert page.locator("#email").get_attribute("aria-describedby") == "email-error"
    _fits(page, width, "sign-up form with errors")

    page.locator("#email").fill("reader@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert _focused_id(page) == "specialty-0"  # now the first field with a problem
    page.locator("label.option", has_text="Cardiology").click()
    page.locator("label.option", has_text="Weekly").click()
    page.locator("#send_weekday").select_option(label="Wednesday")
    page.locator("#timezone").fill("berlin")  # a city is enough
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Check your inbox"
    _fits(page, width, "check your inbox")
    with session_scope(services.sessions) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.email == "reader@example.org")).one()
        assert (row.timezone, row.cadence, row.send_weekday) == ("Europe/Berlin", "weekly", 2)


def _link(message: EmailMessage, path: str) -> str:
    found = re.search(rf"https?://[^\s]+/{path}/[\w.-]+", message.get_body(("plain",)).get_content())
    assert found, f"no /{path}/ link in the email"
    return found.group(0)


@pytest.mark.parametrize("width", WIDTHS)
def test_confirm_manage_unsubscribe_and_come_back(
    site: tuple[str, Services], new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, width: int
) -> None:
    url, services = site
    page = new_page(width, "light")
    page.goto(url + "/")
    page.locator("#email").fill("ada@example.org")
    page.locator("label.option", has_text="Oncology").click()
    page.locator("#timezone").fill("America/New_York")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    [mail] = smtp_sink.messages

    # The confirmation email: nothing wider than the screen (the long link wraps), choices repeated.
    html = mail.get_body(("html",)).get_content()
    for scheme in ("light", "dark"):
        email_page = new_page(width, scheme)
        email_page.set_content(html)
        assert email_page.evaluate(TOO_WIDE) == [], f"confirmation email at {width}px, {scheme}"
    assert "Every day at 07:00, America/New_York time" in html and "your first digest arrives on" in html

    page.goto(_link(mail, "confirm"))
    assert page.locator("h1").inner_text() == "You are subscribed"
    assert page.locator("dd").first.inner_text() == "Oncology"
    assert "Your first digest arrives on" in page.content()
    _fits(page, width, "confirmed page")

    page.get_by_role("link", name=re.compile("Change your specialties")).click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Your preferences"
    _fits(page, width, "preference centre")
    page.locator("label.option", has_text="Oncology").click()  # none left: an error, focused
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_load_state()
    assert _focused_id(page) == "specialty-0"
    _error_next_to(page, "specialty-0", "specialties-error")

    smtp_sink.clear()
    with session_scope(services.sessions) as s:
        sid = s.scalars(select(Subscriber.id).where(Subscriber.email == "ada@example.org")).one()
    page.goto(f"{url}/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}")
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert page.get_by_role("button", name="Unsubscribe").count() == 0
    _fits(page, width, "unsubscribed page")
    page.get_by_role("button", name="Subscribe again").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Check your inbox"
    [again] = smtp_sink.messages
    page.goto(_link(again, "confirm"))
    assert page.locator("h1").inner_text() == "You are subscribed"
    with session_scope(services.sessions) as s:
        assert s.get(Subscriber, sid).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("edition", ["clinician", "patient"])
def test_a_digest_fits_a_phone_with_44px_links_outside_the_text(
    new_page: Callable[[int, Scheme], Page], edition: str, scheme: Scheme
) -> None:
    """An 8-item digest at 375 px: nothing wider than the screen; "In this issue", "view in browser"
    and the footer's links are at least 44 px tall."""
    from digest.rendering.compiled import EmailRenderer
    from tests.factories import SAMPLE_RECIPIENT, sample_variant

    renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")
    page = new_page(375, scheme)
    page.set_content(renderer.render(sample_variant(edition), SAMPLE_RECIPIENT).html)
    assert page.evaluate(TOO_WIDE) == []
    assert page.locator(".toc a").count() == 8
    assert page.evaluate(SMALL_TARGETS, ".toc a, .view-online, .footer-links a") == []


@pytest.mark.parametrize("width", WIDTHS)
def test_relevance_summary_and_erase_pages_have_44px_targets(
    site: tuple[str, Services], new_page: Callable[[int, Scheme], Page], width: int
) -> None:
    """The preference centre with its study-type and safety-alert checkboxes (issue 20), a summary with
    two versions in its history, and the erase pages: every target at least 44 px, no sideways scroll."""
    from tests.factories import add_subscriber, add_summaries, summary_record

    url, services = site
    first = summary_record(id="s-two", title="Trial with two versions")
    cohort = summary_record(id="s-cohort", study={"type": "cohort study", "evidence_level": 3})
    with session_scope(services.sessions) as s:
        add_summaries(s, first, cohort)
        add_summaries(s, {**first, "status": "corrected", "correction_note": "The hazard ratio was 0.80."})
        sid = add_subscriber(s, "reader@example.org", ["cardiology"]).id
    prefs = f"{url}/preferences/{services.tokens.make(Purpose.PREFERENCES, sid)}"
    page = new_page(width, "light")

    page.goto(prefs)
    study_types = page.locator("input[name=study_types]")
    assert study_types.count() >= 2  # "cohort study" and "randomised controlled trial"
    assert page.locator("input[name=safety_alerts]").count() == 1
    _fits(page, width, "preference centre with relevance controls")
    page.locator("label", has_text="Cohort study").click()
    assert page.locator("input[name=study_types][value='cohort study']").is_checked()  # the label is the target

    page.goto(f"{url}/summaries/s-two")
    assert page.locator("#history ~ table tbody tr").count() == 2
    _fits(page, width, "summary with two versions")

    page.goto(f"{prefs}/erase")
    _fits(page, width, "erase page")
    page.get_by_role("button", name="Erase my data").click()  # not ticked: asked to tick
    page.wait_for_load_state()
    _fits(page, width, "erase page with its error")
    page.locator("label", has_text="erase my data now").click()
    page.get_by_role("button", name="Erase my data").click()
    page.wait_for_load_state()
    _fits(page, width, "erased page")
