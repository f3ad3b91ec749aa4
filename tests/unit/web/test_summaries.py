"""The web version of a summary shows its history, and the archive marks corrected and retracted items."""

from __future__ import annotations

from fastapi.testclient import TestClient

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.dispatch import send_issue
from digest.wiring import Services
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record

NOTE = "The hazard ratio was mistyped as 0.08; it is 0.80."


def test_summary_page_shows_versions_dates_and_the_correction_note(web: TestClient, services: Services) -> None:
    record = summary_record(id="s-hist", title="Trial with a history", key_takeaway="Lowered risk (HR 0.08).")
    with session_scope(services.sessions) as s:
        add_summaries(s, record)
        add_summaries(s, {**record, "summary": "A randomised trial; typo fixed.\n\nMore detail."})
        add_summaries(
            s,
            {
                **record,
                "summary": "A randomised trial; typo fixed.\n\nMore detail.",
                "key_takeaway": "Lowered risk (HR 0.80).",
                "status": "corrected",
                "correction_note": NOTE,
            },
        )
    page = web.get("/summaries/s-hist")
    assert page.status_code == 200
    text = page.text
    assert "Corrected.</strong> " + NOTE in text and "Lowered risk (HR 0.80)." in text and "HR 0.08)" not in text
    history = text[text.index('id="history"') :]
    rows = history.split("<tr>")[2:]  # after the header row
    assert len(rows) == 3
    assert rows[0].startswith("<td>3 (corrected)</td>") and "key takeaway" in rows[0] and NOTE in rows[0]
    assert rows[1].startswith("<td>2</td>") and "summary (wording only)" in rows[1]
    assert rows[2].startswith("<td>1</td>") and "first published" in rows[2]
    assert " UTC</td>" in rows[0]
    assert web.get("/summaries/nope").status_code == 404


def test_archive_marks_issues_whose_items_were_corrected_or_retracted(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    now = services.clock()
    one = summary_record(id="a-1", title="Kept trial")
    two = summary_record(id="a-2", title="Withdrawn trial")
    with session_scope(services.sessions) as s:
        add_summaries(s, one, two)
        add_subscriber(s, "reader@example.org", ["cardiology"], created_at=now)
        issue_id = add_campaign(s, now, subject="Picks of the week", pinned=["a-1", "a-2"])
    send_issue(services, issue_id)
    assert "retracted since" not in web.get("/issues").text
    with session_scope(services.sessions) as s:
        add_summaries(s, {**two, "status": "retracted", "correction_note": "Data fabrication."})
    listing = web.get("/issues").text
    entry = listing[listing.index("Picks of the week") :].split("</li>")[0]
    assert "retracted since: 1" in entry and "corrected since" not in entry
    web_version = web.get(f"/issues/{issue_id}").text
    assert "Retracted:</strong> Data fabrication." in web_version
