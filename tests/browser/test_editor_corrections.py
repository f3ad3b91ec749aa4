"""The corrections screen in Chromium at 375 and 1280 px against the real app and a real SMTP server:
a summary sent to two clinicians and a patient is corrected upstream; the editor sees the pending
correction with its readers per edition, approves it (the notices go out), then sends a safety
alert. The page fits the width, every target is at least 44 px, and no table scrolls in its box."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from playwright.sync_api import Page

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.editors.service import EditorIn, create_editor
from tests.browser.conftest import Live, Scheme, sign_in
from tests.browser.targets import assert_fits, assert_tables_fit
from tests.factories import add_subscriber, add_summaries, summary_record

PASSWORD = "a long editor password"
NOTE = "The hazard ratio was mistyped as 0.08; it is 0.80."


@pytest.mark.parametrize("width", [375, 1280])
def test_pending_correction_readers_approve_and_alert(
    live: Live, new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, width: int
) -> None:
    now = live.services.clock()
    record = summary_record(
        id="apixaban-1", title="Reduced-dose apixaban", key_takeaway="Recurrence fell (HR 0.08).", published_at=None
    )
    record["published_at"] = (now - timedelta(hours=12)).isoformat()
    with session_scope(live.services.sessions) as s:
        create_editor(s, EditorIn("editor@example.org", PASSWORD, "Europe/Berlin"))
        add_summaries(s, record)
        past = now - timedelta(days=3)
        add_subscriber(s, "c1@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "c2@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "p1@example.org", ["cardiology"], edition="patient", created_at=past)
    dispatch.send_due(live.services, now)
    assert len(smtp_sink.received) == 3
    smtp_sink.clear()
    with session_scope(live.services.sessions) as s:
        add_summaries(
            s, {**record, "key_takeaway": "Recurrence fell (HR 0.80).", "status": "corrected", "correction_note": NOTE}
        )

    page = new_page(width)
    sign_in(page, live.url, "/editor/issues", PASSWORD)
    page.goto(f"{live.url}/editor/corrections")
    section = page.locator("section", has_text="Reduced-dose apixaban")
    assert "2 clinician, 1 patient" in section.locator(".readers").inner_text()
    assert NOTE in section.locator("textarea").input_value()
    assert_fits(page, width, "corrections page with a pending correction")
    assert_tables_fit(page, width, "corrections page")
    live.shot(page, f"corrections-pending-{width}")

    section.get_by_role("button", name="Approve and send").click()
    page.wait_for_load_state()
    assert "No correction is waiting." in page.inner_text("main")
    assert sorted(m["To"] for m in smtp_sink.messages) == ["c1@example.org", "c2@example.org", "p1@example.org"]

    smtp_sink.clear()
    page.select_option("#alert-summary", "apixaban-1")
    page.fill("#alert-note", "Check liver function before each dose.")
    page.get_by_role("button", name="Send safety alert").click()
    page.wait_for_load_state()
    rows = page.locator("#sent ~ table tbody tr")
    assert rows.count() == 2  # the correction notice and the alert
    assert_fits(page, width, "corrections page with notices sent")
    assert_tables_fit(page, width, "corrections page with notices sent")
