"""Composing and sending a campaign honestly, in Chromium at 375 and 1280 px against the real app
and a real SMTP server: the searchable pinned-summary picker (and the plain select without
JavaScript), counts per variant, the warning for a recipient outside the audience, a confirmation
with the audience size before schedule / send now / cancel / delete, editing a scheduled issue
without unscheduling it, "Scheduled for" gone once sent, duplicate and delete of drafts. Every page
fits the width with no target under 44 px. Screenshots go to tests/artifacts/editor/."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.editors.service import EditorIn, create_editor
from digest.ledger.models import Issue, IssueStatus
from tests.browser.a11y import audit, describe
from tests.browser.conftest import Live, Scheme, sign_in
from tests.browser.targets import assert_fits
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

PASSWORD = "a long editor password"


def _seed(live: Live, clock: Clock) -> None:
    """Cardiology audience: five readers get the two pins only, two get six (four new oncology
    items too); a dermatology reader is outside the audience."""
    now = clock()
    with session_scope(live.services.sessions) as s:
        create_editor(s, EditorIn("editor@example.org", PASSWORD, "Europe/Berlin"))
        add_summaries(
            s,
            summary_record(
                id="pin-tavi",
                title="TAVI in low-risk patients",
                specialties=["cardiology"],
                published_at=days_before(now, 20),
            ),
            summary_record(
                id="pin-doac",
                title="DOACs after bleeding",
                specialties=["cardiology"],
                published_at=days_before(now, 21),
            ),
            *(
                summary_record(
                    id=f"onc-{n}",
                    title=f"Oncology trial {n}",
                    specialties=["oncology"],
                    published_at=days_before(now, n / 10 + 0.1),
                )
                for n in range(4)
            ),
        )
        for n in range(5):
            add_subscriber(s, f"cardio{n}@example.org", ["cardiology"], created_at=now)
        for n in range(2):
            add_subscriber(s, f"both{n}@example.org", ["cardiology", "oncology"], created_at=now)
        add_subscriber(s, "derm@example.org", ["dermatology"], created_at=now)


def _log_in(page: Page, live: Live) -> None:
    sign_in(page, live.url, "/editor/issues", PASSWORD)


def _status(live: Live, issue_id: int) -> str:
    with session_scope(live.services.sessions) as s:
        return str(s.scalar(select(Issue.status).where(Issue.id == issue_id)))


@pytest.mark.parametrize("width", [375, 1280])
def test_compose_preview_confirm_edit_send_duplicate_delete(
    live: Live, new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, clock: Clock, width: int
) -> None:
    _seed(live, clock)
    page = new_page(width)
    _log_in(page, live)

    # Compose: the picker's filter box narrows the list; one click picks a summary (no Ctrl).
    page.goto(f"{live.url}/editor/issues/new")
    page.fill("#subject", "Two cardiology trials")
    page.check("input[name=audience][value=specialties]")
    page.check("input[name=specialties][value=cardiology]")
    page.fill("#pinned-filter", "tavi")
    visible = page.eval_on_selector_all("#pinned option", "os => os.filter(o => !o.hidden).map(o => o.value)")
    assert visible == ["pin-tavi"]
    page.click("#pinned option[value=pin-tavi]")
    page.fill("#pinned-filter", "doac bleeding")
    page.click("#pinned option[value=pin-doac]")
    assert "TAVI in low-risk patients" in page.inner_text("#pinned-chosen")
    assert_fits(page, width, "compose page")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"issue-compose-{width}")
    page.click("button:has-text('Save draft and preview')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    issue_id = int(page.url.rsplit("/", 1)[-1])

    # Honest counts: most recipients get the two pins, two get six.
    assert "5 recipients get 2 summaries, 2 get 6" in page.inner_text("#outlook")
    assert "5 recipients get 2 summaries, 2 get 6" in page.inner_text("#preview-count")
    assert_fits(page, width, "issue page")
    live.shot(page, f"issue-preview-{width}")

    # Preview as someone outside the audience: a warning.
    page.fill("#as-subscriber", "derm@example.org")
    page.click("button:has-text('Show')")
    page.wait_for_load_state()
    assert "derm@example.org is not in this issue's audience" in page.inner_text("#outside-audience")
    live.shot(page, f"issue-outside-audience-{width}")
    page.fill("#as-subscriber", "both0@example.org")
    page.click("button:has-text('Show')")
    page.wait_for_load_state()
    assert page.locator("#outside-audience").count() == 0
    assert "has 6 summaries" in page.inner_text("#preview-count")

    # Schedule: a confirmation with the audience size first.
    page.fill("#send_at", "2026-11-28T09:00")
    page.click("button:has-text('Schedule')")
    page.wait_for_url(re.compile(r".*/confirm/schedule.*"))
    message = page.inner_text("#confirm-message")
    assert "It is addressed to 7 subscribers: 5 recipients get 2 summaries, 2 get 6." in message
    assert _status(live, issue_id) == IssueStatus.DRAFT  # nothing changed yet
    assert_fits(page, width, "schedule confirmation")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"issue-confirm-schedule-{width}")
    page.click("button:has-text('Yes, schedule it')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    assert page.inner_text("#state") == "scheduled"
    assert "2026-11-28 09:00 CET" in page.inner_text("#scheduled-for")

    # Edit while scheduled: it stays scheduled for the same time.
    page.click("text=Edit (stays scheduled)")
    page.fill("#subject", "Two cardiology trials, edited")
    page.click("button:has-text('Save draft and preview')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    assert page.inner_text("#state") == "scheduled"
    assert "2026-11-28 09:00 CET" in page.inner_text("#scheduled-for")

    # Send now (confirmed): everyone once; "Scheduled for" is gone.
    page.click("text=Send now…")
    assert "Send “Two cardiology trials, edited” now? It is addressed to 7" in page.inner_text("#confirm-message")
    page.click("button:has-text('Yes, send it now')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    assert page.inner_text("#state") == "sent"
    assert page.locator("#scheduled-for").count() == 0 and "scheduled for" not in page.inner_text("main")
    assert len(smtp_sink.messages) == 7
    assert {m["Subject"] for m in smtp_sink.messages} == {"Two cardiology trials, edited"}
    assert "derm@example.org" not in {m["To"] for m in smtp_sink.messages}
    live.shot(page, f"issue-sent-{width}")
    page.goto(f"{live.url}/editor/issues")
    row = page.locator("#campaigns tbody tr", has_text="Two cardiology trials, edited")
    assert row.locator("td").nth(2).inner_text() == ""  # the "Scheduled for" column is empty once sent

    # Duplicate (a new draft to edit), then delete it after a confirmation.
    page.goto(f"{live.url}/editor/issues/{issue_id}")
    page.click("button:has-text('Duplicate')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+/edit$"))
    copy_id = int(page.url.rsplit("/", 2)[-2])
    assert copy_id != issue_id and page.input_value("#subject") == "Copy of Two cardiology trials, edited"
    assert page.eval_on_selector_all("#pinned option:checked", "os => os.map(o => o.value)") == ["pin-tavi", "pin-doac"]
    page.goto(f"{live.url}/editor/issues/{copy_id}")
    page.click("text=Delete draft…")
    assert "Delete the draft" in page.inner_text("#confirm-message")
    assert_fits(page, width, "delete confirmation")
    page.click("button:has-text('Yes, delete the draft')")
    page.wait_for_url(f"{live.url}/editor/issues")
    with session_scope(live.services.sessions) as s:
        assert s.get(Issue, copy_id) is None and s.get(Issue, issue_id) is not None

    # Cancel asks first too, with who would not get it.
    page.click("text=Compose a new issue")
    page.fill("#subject", "To be cancelled")
    page.click("button:has-text('Save draft and preview')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    page.click("text=Cancel issue…")
    assert "None of them will get it" in page.inner_text("#confirm-message")
    page.click("button:has-text('Yes, cancel the issue')")
    page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
    assert page.inner_text("#state") == "cancelled"


def test_the_picker_works_without_javascript(live: Live, browser: Browser, clock: Clock) -> None:
    _seed(live, clock)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
    try:
        page = context.new_page()
        _log_in(page, live)
        page.goto(f"{live.url}/editor/issues/new")
        assert not page.is_visible("#pinned-filter")  # the filter box needs JavaScript; the select does not
        page.fill("#subject", "Without JavaScript")
        page.select_option("#pinned", ["pin-doac"])
        page.click("button:has-text('Save draft and preview')")
        page.wait_for_url(re.compile(r".*/editor/issues/\d+$"))
        assert "DOACs after bleeding" in page.frame_locator("#preview-desktop").locator("body").inner_text()
    finally:
        context.close()
