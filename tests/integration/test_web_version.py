"""The web version of each message ("View this email in your browser") shows what that reader got:
the messages are taken from a real SMTP server, their link followed, and the page compared with the
message: the same summaries (headings and leads) in the same order, the same reader's links."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from lxml import html as lxml_html
from sqlalchemy import select, update

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.models import Summary
from digest.issues.service import schedule_issue
from digest.ledger.models import Delivery
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record
from workers import tasks


def _seed(services: Services, clock: Clock) -> None:
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            *(
                summary_record(
                    id=f"{slug}-{n}",
                    title=f"{slug.title()} finding {n}",
                    specialties=[slug],
                    published_at=days_before(now, n),
                    patient_summary=f"In plain words, {slug} {n}.",
                    patient_title=f"What {slug} study {n} means for you" if n == 1 else None,
                    source_url=f"https://journal.example/{slug}/{n}",
                )
                for slug in ("cardiology", "oncology", "hematology")
                for n in (1, 2, 3)
            ),
        )
        past = now - timedelta(days=3)
        add_subscriber(s, "cara@example.org", ["cardiology"], name="Cara Jones", created_at=past)
        add_subscriber(s, "mixed@example.org", ["oncology", "hematology"], created_at=past)
        add_subscriber(s, "pat@example.org", ["cardiology", "oncology"], edition="patient", created_at=past)


def _message_html(message: EmailMessage) -> lxml_html.HtmlElement:
    part = message.get_body(("html",))
    assert part is not None
    return lxml_html.fromstring(part.get_content())


def _summaries_shown(doc: lxml_html.HtmlElement) -> list[tuple[str, str]]:
    """(heading, lead) of each item, in order."""
    return [
        (card.xpath("string(.//h2[@class='title'])"), card.xpath("string(.//div[@class='takeaway'])"))
        for card in doc.xpath("//td[starts-with(@id, 'item-')]")
    ]


def _follow_web_link(web: TestClient, doc: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
    [link] = doc.xpath("//a[@class='view-online']/@href")
    response = web.get(urlsplit(link).path)
    assert response.status_code == 200, response.text
    assert response.headers["x-robots-tag"] == "noindex" and response.headers["cache-control"] == "no-store"
    page = lxml_html.fromstring(response.text)
    assert not page.xpath("//a[@class='view-online']")  # the page does not link to itself
    return page


def _compare_every_received_message(web: TestClient, smtp_sink: SMTPSink) -> int:
    for received in smtp_sink.received:
        message = _message_html(received.message)
        page = _follow_web_link(web, message)
        shown = _summaries_shown(message)
        assert shown and _summaries_shown(page) == shown, received.rcpt_tos
        # The reader's own links, not placeholders.
        for cls in ("footer-links",):
            assert page.xpath(f"//p[@class='{cls}']//a/@href") == message.xpath(f"//p[@class='{cls}']//a/@href")
        assert page.xpath("string(//td[@class='lead'])") == message.xpath("string(//td[@class='lead'])")
    return len(smtp_sink.received)


def test_each_digest_s_web_version_is_the_message_its_reader_got(
    services: Services, web: TestClient, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    run = dispatch.send_due(services, clock())
    assert run.plan.deliveries == 3
    assert _compare_every_received_message(web, smtp_sink) == 3
    by_rcpt = {r.rcpt_tos[0]: r.message for r in smtp_sink.received}
    patient = _summaries_shown(_message_html(by_rcpt["pat@example.org"]))
    assert ("What cardiology study 1 means for you", "What this means for patientsIn plain words, cardiology 1.") in (
        patient
    )
    assert {h for h, _ in _summaries_shown(_message_html(by_rcpt["cara@example.org"]))} == {
        f"Cardiology finding {n}" for n in (1, 2, 3)
    }


def test_a_campaign_s_web_version_keeps_the_pins_and_tracked_links(
    services: Services, web: TestClient, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    now = clock()
    with session_scope(services.sessions) as s:
        # Weekly readers, so no cadence digest is due alongside the campaign.
        s.execute(update(Summary).values(published_at=now - timedelta(hours=2)))
        for email, specialty in (("wcardio@example.org", "cardiology"), ("wonco@example.org", "oncology")):
            add_subscriber(s, email, [specialty], cadence="weekly", created_at=now - timedelta(days=1))
        issue_id = add_campaign(s, now, subject="Winter picks", intro="Hello **readers**", pinned=["hematology-2"])
        schedule_issue(s, issue_id, now.replace(tzinfo=None) + timedelta(minutes=1), "UTC", now)
    smtp_sink.clear()
    clock.advance(minutes=2)
    tasks.dispatch_due()
    campaign = [r for r in smtp_sink.received if r.message["Subject"] == "Winter picks"]
    assert len(campaign) >= 2
    for received in campaign:
        message = _message_html(received.message)
        page = _follow_web_link(web, message)
        assert _summaries_shown(page) == _summaries_shown(message)
        assert message.xpath("//td[@id='item-1']//p[@class='pick']/text()") == ["Editor's pick"]
        assert page.xpath("//td[@id='item-1']//p[@class='pick']/text()") == ["Editor's pick"]
        tracked = message.xpath("//p[@class='cta']/a/@href")
        assert tracked and all("/r/" in href for href in tracked)
        assert page.xpath("//p[@class='cta']/a/@href") == tracked


def test_forged_or_unsent_links_show_nothing(
    services: Services, web: TestClient, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    dispatch.send_due(services, clock())
    assert web.get("/web/forged").status_code == 400
    # A subscriber token is not a web-version token, even for the same number.
    with session_scope(services.sessions) as s:
        delivery_id = s.scalars(select(Delivery.id)).first()
    assert delivery_id is not None
    assert web.get(f"/web/{services.tokens.make(Purpose.UNSUBSCRIBE, delivery_id)}").status_code == 400
    assert web.get(f"/web/{services.tokens.make(Purpose.WEB_VERSION, 10**6)}").status_code == 404


def test_an_edit_after_sending_is_pointed_out(
    services: Services, web: TestClient, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    dispatch.send_due(services, clock())
    with session_scope(services.sessions) as s:
        s.execute(update(Summary).where(Summary.id == "cardiology-1").values(key_takeaway="Corrected takeaway."))
    received = next(r for r in smtp_sink.received if r.rcpt_tos[0] == "cara@example.org")
    [link] = _message_html(received.message).xpath("//a[@class='view-online']/@href")
    assert "changed after it was sent" in web.get(urlsplit(link).path).text
