"""An editor's campaign end to end: scheduled in local time, started by dispatch_due, delivered
through a real SMTP server; tracked links, the public web version and the figures."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.issues.archive import archive, web_version
from digest.issues.figures import issue_figures
from digest.issues.links import follow
from digest.issues.service import IssueNotFound, schedule_issue
from digest.subscribers.models import Subscriber, SuppressionReason
from digest.subscribers.suppression import suppress
from digest.subscribers.tokens import BadToken
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record
from workers import tasks


class _RejectingHandler:
    """Accepts everything but one address, which it refuses permanently (a hard bounce)."""

    def __init__(self, sink: SMTPSink, refuse: str):
        self.sink, self.refuse = sink, refuse

    async def handle_RCPT(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        from digest.delivery.sink import Received

        self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 2.0.0 OK"


@pytest.fixture
def smtp_sink() -> SMTPSink:
    sink = SMTPSink()
    sink.controller.handler = _RejectingHandler(sink, "gone@example.org")
    with sink:
        yield sink


def test_scheduled_campaign_goes_out_and_is_measured(services: Services, clock: Clock, smtp_sink: SMTPSink) -> None:
    now = clock()  # Fri 27 Nov 2026, 12:00 UTC
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="pin",
                title="Pinned for all",
                specialties=["dermatology"],
                published_at=days_before(now, 3),
                source_url="https://journal.example/pin",
            ),
            summary_record(
                id="cardio",
                title="Heart news",
                specialties=["cardiology"],
                published_at=days_before(now, 1),
                source_url="https://journal.example/cardio",
            ),
        )
        for email in ("cara@example.org", "dora@example.org", "gone@example.org", "ella@example.org"):
            # Weekly readers who joined after Monday's slot: no cadence digest is due in this test.
            add_subscriber(
                s,
                email,
                ["cardiology"],
                name="Cara Jones" if email.startswith("cara") else "",
                cadence="weekly",
                created_at=now - timedelta(days=1),
            )
        issue_id = add_campaign(s, now, subject="Winter picks", intro="Hello **readers**", pinned=["pin"])
        # 14:30 in Berlin is 13:30 UTC.
        schedule_issue(s, issue_id, datetime(2026, 11, 27, 14, 30), "Europe/Berlin", now)

    tasks.dispatch_due()
    assert smtp_sink.received == []  # not yet
    clock.advance(minutes=90)
    tasks.dispatch_due()
    got = {r.rcpt_tos[0]: r.message for r in smtp_sink.received}
    assert set(got) == {"cara@example.org", "dora@example.org", "ella@example.org"}  # gone@ bounced
    tasks.dispatch_due()
    assert len(smtp_sink.received) == 3  # nothing twice

    msg = got["cara@example.org"]
    assert msg["Subject"] == "Winter picks"
    html = msg.get_body(preferencelist=("html",)).get_content()
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert f'href="https://digest.example.org/issues/{issue_id}"' in html and "View this digest in your browser" in html
    assert "<strong>readers</strong>" in html
    assert html.index("Pinned for all") < html.index("Heart news")  # pinned first
    assert "https://journal.example/" not in html and "https://journal.example/" not in text  # links are tracked
    links = re.findall(r'href="(https://digest\.example\.org/r/[^"]+)"', html)
    assert len(links) == 2 and all(link in text for link in links)

    # Following a link records a click and leads to the summary.
    token = links[1].rsplit("/r/", 1)[1]
    with session_scope(services.sessions) as s:
        assert follow(s, services.links, token, clock()) == "https://journal.example/cardio"
        assert follow(s, services.links, token, clock()) == "https://journal.example/cardio"
    # Tampering and open-redirect attempts are refused.
    delivery_part, url_part = token.split("~")
    other = services.links.click_base(1).rsplit("/r/", 1)[1]
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        delivery_part + "~" + "evil",
        delivery_part,
        "https://evil.example/",
        delivery_part
        + "~"
        + url_part.replace(url_part.split(".")[0], "Imh0dHBzOi8vZXZpbC5leGFtcGxlLyI"),  # new URL, old signature
        other + services.links._url.dumps("https://evil.example/").replace(".", ".x", 1),
    ]
    with session_scope(services.sessions) as s:
        for bad in forged:
            with pytest.raises(BadToken):
                follow(s, services.links, bad, clock())
    with pytest.raises(ValueError, match="only http"):
        services.links.sign_url("javascript:alert(1)")

    # The web version: the same content, no personal data, no tokens.
    with session_scope(services.sessions) as s:
        web = web_version(s, services.renderer, issue_id)
        assert [e.id for e in archive(s, services.settings.base_url)] == [issue_id]
    for needle in ("cara@example.org", "Cara", "/unsubscribe/", "/preferences/", "/r/"):
        assert needle not in web.html
    assert "Pinned for all" in web.html and "Heart news" in web.html and "Hello," in web.html

    # Figures: a complaint and an unsubscribe after the send are attributed to this issue.
    clock.advance(days=1)
    with session_scope(services.sessions) as s:
        suppress(s, "dora@example.org", SuppressionReason.COMPLAINT)
        ella = s.query(Subscriber).filter_by(email="ella@example.org").one()
        ella.status, ella.unsubscribed_at = "unsubscribed", clock()
        figures = issue_figures(s, issue_id)
    assert (figures.recipients, figures.sent, figures.failed, figures.bounced) == (4, 3, 1, 1)
    assert (figures.complaints, figures.unsubscribes, figures.clicks, figures.unique_clicks) == (1, 1, 2, 1)
    assert sum(p.sent for p in figures.timeline) == 3 and sum(p.clicks for p in figures.timeline) == 2


def test_unpublished_issue_is_not_in_the_archive(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock())
        with pytest.raises(IssueNotFound):
            web_version(s, services.renderer, issue_id)
        assert archive(s, services.settings.base_url) == []
