"""The public archive (no personal data, drafts stay private) and the click redirect (signed targets
only: a tampered token or an unsigned URL gets the invalid-link page, never a redirect)."""

from __future__ import annotations

import base64
import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.dispatch import send_issue
from digest.issues.models import Click
from digest.ledger.models import Delivery
from digest.wiring import Services
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record


def _sent_campaign(services: Services) -> int:
    now = services.clock()
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="s-1", title="Archived trial", source_url="https://example.org/trial"))
        add_subscriber(s, "private.reader@example.org", ["cardiology"], created_at=now, name="Pat Private")
        issue_id = add_campaign(s, now, subject="Published picks", pinned=["s-1"])
    send_issue(services, issue_id)
    return issue_id


def test_archive_lists_sent_issues_and_shows_no_personal_data(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    issue_id = _sent_campaign(services)
    with session_scope(services.sessions) as s:
        draft_id = add_campaign(s, services.clock(), subject="Secret draft")
    listing = web.get("/issues")
    assert listing.status_code == 200
    assert "Published picks" in listing.text and "Secret draft" not in listing.text

    page = web.get(f"/issues/{issue_id}")
    assert page.status_code == 200 and "Archived trial" in page.text
    for personal in ("private.reader@example.org", "Pat Private", "/unsubscribe/", "/preferences/", "/r/"):
        assert personal not in page.text, personal
    (email,) = smtp_sink.messages
    # "View in browser" is the reader's own web version (tests/integration/test_web_version.py).
    assert 'href="https://digest.example.org/web/' in email.get_body(("html",)).get_content()

    assert web.get(f"/issues/{draft_id}").status_code == 404
    assert web.get("/issues/9999").status_code == 404


def _click_link(smtp_sink: SMTPSink) -> str:
    html = smtp_sink.messages[0].get_body(("html",)).get_content()
    found = re.search(r'href="https://digest\.example\.org(/r/[^"]+)"', html)
    assert found, "no tracked link in the email"
    return found.group(1)


def test_click_redirects_to_the_signed_target_and_is_counted(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    _sent_campaign(services)
    response = web.get(_click_link(smtp_sink))
    assert response.status_code in (302, 303) and response.headers["location"] == "https://example.org/trial"
    with session_scope(services.sessions) as s:
        assert [c.url for c in s.scalars(select(Click))] == ["https://example.org/trial"]


def test_tampered_or_unsigned_targets_never_redirect(web: TestClient, services: Services, smtp_sink: SMTPSink) -> None:
    _sent_campaign(services)
    good = _click_link(smtp_sink)
    delivery_part, url_part = good.removeprefix("/r/").split("~")
    with session_scope(services.sessions) as s:
        delivery_id = s.scalar(select(Delivery.id))
    forged_url = base64.urlsafe_b64encode(json.dumps("https://evil.example/").encode()).decode().rstrip("=")
    attempts = [
        f"/r/{delivery_part}~{forged_url}.AAAA",  # a target digest never signed
        f"/r/{delivery_part}~{url_part[:-2]}xy",  # a broken signature
        f"/r/{delivery_part}",  # no target at all
        f"/r/{delivery_id}~https%3A%2F%2Fevil.example%2F",  # a bare URL (no route matches it: 404)
        "/r/x~y",
    ]
    for path in attempts:
        response = web.get(path)
        assert response.status_code in (400, 404), path
        assert "location" not in response.headers, path
        if response.status_code == 400:
            assert "This link is not valid" in response.text
    with session_scope(services.sessions) as s:
        assert s.scalars(select(Click)).all() == []


def test_archive_shows_the_variant_most_recipients_received_without_placeholders(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    """A cardiology campaign with two pins: three readers got only the pins, one also got a new
    oncology item. The archive shows the pins alone (what 3 of 4 received), in the order the
    emails had them, with no greeting, no "sent to" line and no preferences link to "/"."""
    now = services.clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="pin-a", title="First pinned trial", specialties=["cardiology"], published_at="2026-11-01T09:00:00Z"
            ),
            summary_record(
                id="pin-b", title="Second pinned trial", specialties=["cardiology"], published_at="2026-11-02T09:00:00Z"
            ),
            summary_record(
                id="onc-new", title="A new oncology item", specialties=["oncology"], published_at="2026-11-26T09:00:00Z"
            ),
        )
        for n in range(3):
            add_subscriber(s, f"cardio{n}@example.org", ["cardiology"], created_at=now)
        add_subscriber(s, "both@example.org", ["cardiology", "oncology"], created_at=now)
        issue_id = add_campaign(s, now, subject="Two trials", specialties=["cardiology"], pinned=["pin-b", "pin-a"])
    send_issue(services, issue_id)
    received = {m["To"]: m.get_body(("plain",)).get_content() for m in smtp_sink.messages}
    assert "A new oncology item" in received["both@example.org"]
    assert "A new oncology item" not in received["cardio0@example.org"]

    page = web.get(f"/issues/{issue_id}").text
    titles = re.findall(r'<h2 class="title"[^>]*>([^<]+)</h2>', page)
    assert titles == ["Second pinned trial", "First pinned trial"]
    mail_order = [t for t in ("Second pinned trial", "First pinned trial") if t in received["cardio0@example.org"]]
    assert received["cardio0@example.org"].index(mail_order[0]) < received["cardio0@example.org"].index(mail_order[1])
    assert "3 of the 4 recipients" in page
    for placeholder in (
        "Hello,",
        "It was sent to",
        "sent to subscribers",
        'href="https://digest.example.org/"> Change',
    ):
        assert placeholder not in page, placeholder
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert "https://digest.example.org/" in hrefs  # the one sign-up link, named as such
    assert re.search(r'<a href="https://digest\.example\.org/"[^>]*>Subscribe to ', page)
    assert not any(h.rstrip("/") == "https://digest.example.org" for h in hrefs if h != "https://digest.example.org/")
    assert len([h for h in hrefs if h == "https://digest.example.org/"]) == 1
