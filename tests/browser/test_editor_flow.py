"""The editor's whole path in Chromium against the real app (uvicorn on loopback) and a real SMTP
server: log in, compose, preview, schedule; the beat task (dispatch_due) sends the issue; a
subscriber opens the unsubscribe link of the email they received and clicks the button. axe finds
no serious or critical violation on the login, compose, preview and archive pages. The received
email has no horizontal scroll at 375px and a 600px column at 640px. Screenshots of every step go
to tests/artifacts/editor/."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage

from playwright.sync_api import Page
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.editors.service import EditorIn, create_editor
from digest.ledger.models import Issue, IssueStatus
from digest.subscribers.models import Subscriber, SubscriberStatus
from digest.wiring import Services
from tests.browser.a11y import audit, describe, load
from tests.browser.conftest import Live, Scheme
from tests.browser.targets import assert_fits
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, summary_record

PASSWORD = "a long editor password"
READERS = {
    "cardio@example.org": ["cardiology"],
    "onco@example.org": ["oncology"],
    "both@example.org": ["cardiology", "oncology"],
}


def _seed(services: Services) -> None:
    now = services.clock()
    with session_scope(services.sessions) as s:
        create_editor(s, EditorIn("editor@example.org", PASSWORD, "Europe/Berlin"))
        add_summaries(
            s,
            summary_record(
                id="pinned-trial",
                title="A trial every clinician should know",
                specialties=["oncology"],
                published_at="2026-11-20T09:00:00Z",
            ),
            summary_record(
                id="cardio-1",
                title="Early rhythm control after stroke",
                specialties=["cardiology"],
                published_at="2026-11-26T09:00:00Z",
            ),
            summary_record(
                id="onco-1",
                title="Shorter adjuvant therapy is non-inferior",
                specialties=["oncology"],
                published_at="2026-11-26T08:00:00Z",
            ),
        )
        for email, specialties in READERS.items():
            add_subscriber(s, email, specialties, created_at=now)


def _assert_accessible(page: Page, what: str) -> None:
    violations = audit(page)
    assert not violations, f"{what}:\n{describe(violations)}"


def _html(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_editor_composes_previews_schedules_and_the_beat_sends(
    live: Live, new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(live.services)
    page = new_page(1440)

    # Log in (the dashboard sends us to the login form first).
    page.goto(f"{live.url}/editor/issues")
    assert page.url.startswith(f"{live.url}/editor/login")
    _assert_accessible(page, "login page")
    page.fill("#email", "editor@example.org")
    page.fill("#password", PASSWORD)
    live.shot(page, "01-login")
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{live.url}/editor/issues")

    # Compose: audience = cardiology and oncology, one pinned summary.
    page.goto(f"{live.url}/editor/issues/new")
    _assert_accessible(page, "compose page")
    page.fill("#subject", "Editor's picks: rhythm and adjuvant therapy")
    page.fill("#preheader", "Two trials worth your time")
    page.fill("#intro", "Welcome to this week's **editor's picks**.")
    page.check("input[name=audience][value=specialties]")
    page.check("input[name=specialties][value=cardiology]")
    page.check("input[name=specialties][value=oncology]")
    page.select_option("#pinned", ["pinned-trial"])
    live.shot(page, "02-compose")
    refused: list[str] = []  # a Content-Security-Policy refusal in the page or its preview frames
    page.on("console", lambda message: refused.append(message.text) if "Refused to" in message.text else None)
    page.click("button:has-text('Save draft and preview')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    issue_id = int(page.url.rsplit("/", 1)[-1])

    # Preview: desktop and phone side by side, as a cardiology subscriber.
    desktop, phone = page.frame_locator("#preview-desktop"), page.frame_locator("#preview-phone")
    assert "A trial every clinician should know" in desktop.locator("body").inner_text()
    assert "Early rhythm control after stroke" in phone.locator("body").inner_text()
    phone_width = page.locator("#preview-phone").evaluate("f => f.contentDocument.documentElement.scrollWidth")
    assert phone_width <= 375
    assert refused == [], refused  # no style or script of the page or its frames refused by a policy
    _assert_accessible(page, "preview page")
    live.shot(page, "03-preview")

    # Schedule a minute ahead, in the editor's zone (Europe/Berlin: UTC+1 now).
    page.fill("#send_at", "2026-11-27T13:01")
    page.click("button:has-text('Schedule')")
    page.wait_for_url(re.compile(r".*/confirm/schedule\?.*"))
    assert "It is addressed to 3 subscribers" in page.inner_text("#confirm-message")
    page.click("button:has-text('Yes, schedule it')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    assert page.inner_text("#state") == "scheduled"
    assert "2026-11-27 13:01 CET" in page.inner_text("main")
    live.shot(page, "04-scheduled")
    assert smtp_sink.messages == []

    # The beat task: nothing before the time, the issue once it has passed.
    from workers.tasks import dispatch_due

    dispatch_due()
    assert smtp_sink.messages == []
    clock.advance(minutes=1, seconds=30)
    dispatch_due()
    received = {m["To"]: m for m in smtp_sink.messages}
    assert sorted(received) == sorted(READERS)
    assert all(m["Subject"] == "Editor's picks: rhythm and adjuvant therapy" for m in received.values())
    dispatch_due()  # again: nothing is sent twice
    assert len(smtp_sink.messages) == len(READERS)
    with session_scope(live.services.sessions) as s:
        assert s.scalar(select(Issue.status).where(Issue.id == issue_id)) == IssueStatus.SENT
    page.reload()
    assert page.inner_text("#state") == "sent"
    live.shot(page, "05-sent")

    # The email at phone and desktop widths.
    html = _html(received["cardio@example.org"])
    narrow = new_page(375)
    load(narrow, html=html)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 375
    live.shot(narrow, "email-375")
    wide = new_page(640)
    load(wide, html=html)
    assert wide.evaluate("document.querySelector('table.container').getBoundingClientRect().width") == 600
    live.shot(wide, "email-640")

    # View in browser: this reader's own web version; the public archive page of the issue.
    web_url = re.search(r'href="([^"]+/web/[^"]+)"', html)
    assert web_url and web_url.group(1).startswith(f"{live.url}/web/")
    own = new_page(375)
    own.goto(web_url.group(1))
    _assert_accessible(own, "web version")
    assert own.locator("h2.title").all_inner_texts() == narrow.locator("h2.title").all_inner_texts()
    archive = new_page(1024)
    archive.goto(f"{live.url}/issues")
    _assert_accessible(archive, "archive list")
    archive.click(f"a[href='/issues/{issue_id}']")
    archive.wait_for_url(f"{live.url}/issues/{issue_id}")
    assert "cardio@example.org" not in archive.content()
    _assert_accessible(archive, "archived issue")
    live.shot(archive, "06-archive-issue")
    # Both, at phone and desktop widths: no sideways scroll, no target under 44 px.
    for width in (375, 1280):
        for what, url in (("web version", web_url.group(1)), ("archived issue", f"{live.url}/issues/{issue_id}")):
            view = new_page(width)
            view.goto(url)
            assert_fits(view, width, what)

    # The subscriber unsubscribes from the link in their email.
    link = re.search(r'href="(http://127\.0\.0\.1:\d+/unsubscribe/[^"]+)"', html)
    assert link, "no unsubscribe link in the email"
    reader = new_page(375)
    reader.goto(link.group(1).replace("&amp;", "&"))
    live.shot(reader, "07-unsubscribe-page")
    with session_scope(live.services.sessions) as s:
        assert (
            s.scalar(select(Subscriber.status).where(Subscriber.email == "cardio@example.org"))
            == SubscriberStatus.ACTIVE
        )
    reader.click("button:has-text('Unsubscribe')")
    reader.wait_for_load_state()
    assert "You are unsubscribed" in reader.inner_text("main")
    live.shot(reader, "08-unsubscribed")
    with session_scope(live.services.sessions) as s:
        statuses = dict(s.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses == {
        "cardio@example.org": "unsubscribed",
        "onco@example.org": "active",
        "both@example.org": "active",
    }
