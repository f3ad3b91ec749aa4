"""End to end on the in-process path: summaries in, digests out through a real SMTP server."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import func, select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ledger.carried import summaries_by_delivery
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record


def _seed(services: Services, clock: Clock) -> None:
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="cardio-1", specialties=["cardiology"], published_at=days_before(now, 1)),
            summary_record(id="cardio-2", specialties=["cardiology"], published_at=days_before(now, 2)),
            summary_record(id="onc-1", specialties=["oncology", "hematology"], published_at=days_before(now, 1)),
            summary_record(id="heme-old", specialties=["hematology"], published_at=days_before(now, 30)),
            summary_record(id="derm-1", specialties=["dermatology"], published_at=days_before(now, 1)),
        )
        past = now - timedelta(days=3)
        add_subscriber(s, "cara@example.org", ["cardiology"], name="Cara Jones", created_at=past)
        add_subscriber(s, "hema@example.org", ["hematology"], name="Hema Rao", created_at=past)
        add_subscriber(s, "both@example.org", ["cardiology", "oncology"], created_at=past)
        add_subscriber(s, "neuro@example.org", ["neurology"], created_at=past)


def _by_rcpt(sink: SMTPSink) -> dict[str, EmailMessage]:
    out = {}
    for r in sink.received:
        assert len(r.rcpt_tos) == 1
        out[r.rcpt_tos[0]] = r.message
    return out


def _takeaways(services: Services, ids: list[str]) -> dict[str, str]:
    from digest.ingest.models import Summary

    with session_scope(services.sessions) as s:
        return {x.id: x.key_takeaway for x in s.scalars(select(Summary).where(Summary.id.in_(ids)))}


def test_each_subscriber_gets_their_specialties_once(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    _seed(services, clock)
    run = dispatch.send_due(services, clock())
    assert run.plan.deliveries == 3

    got = _by_rcpt(smtp_sink)
    assert set(got) == {"cara@example.org", "hema@example.org", "both@example.org"}  # neurology: nothing new, no email
    takeaways = _takeaways(services, ["cardio-1", "cardio-2", "onc-1", "heme-old", "derm-1"])

    def html(msg: EmailMessage) -> str:
        return msg.get_body(preferencelist=("html",)).get_content()

    def text(msg: EmailMessage) -> str:
        return msg.get_body(preferencelist=("plain",)).get_content()

    cara = got["cara@example.org"]
    assert takeaways["cardio-1"] in text(cara) and takeaways["cardio-2"] in text(cara)
    assert takeaways["onc-1"] not in text(cara) and takeaways["derm-1"] not in text(cara)
    hema = got["hema@example.org"]
    assert takeaways["onc-1"] in text(hema)
    assert takeaways["heme-old"] not in text(hema)  # older than the 7-day window
    both = got["both@example.org"]
    for sid in ("cardio-1", "cardio-2", "onc-1"):
        assert takeaways[sid] in html(both)

    # Second run at once: nothing twice.
    smtp_sink.clear()
    again = dispatch.send_due(services, clock())
    assert again.plan.deliveries == 0 and smtp_sink.received == []

    # A day later with one new cardiology summary: only that one, only to cardiology readers.
    clock.advance(days=1)
    with session_scope(services.sessions) as s:
        add_summaries(
            s, summary_record(id="cardio-3", specialties=["cardiology"], published_at=days_before(clock(), 0.1))
        )
    dispatch.send_due(services, clock())
    got = _by_rcpt(smtp_sink)
    assert set(got) == {"cara@example.org", "both@example.org"}
    new_text = text(got["cara@example.org"])
    assert _takeaways(services, ["cardio-3"])["cardio-3"] in new_text
    assert takeaways["cardio-1"] not in new_text


def test_message_shape_and_headers(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    _seed(services, clock)
    dispatch.send_due(services, clock())
    msg = _by_rcpt(smtp_sink)["cara@example.org"]
    raw = next(r.raw for r in smtp_sink.received if r.rcpt_tos[0] == "cara@example.org")

    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["From"] == "Evidence Digest <digest@news.example.org>"
    assert msg["To"] == "Cara Jones <cara@example.org>"
    assert msg["Subject"] and msg["Date"]
    assert msg["List-Id"] == "Clinical evidence digest <clinical-evidence-digest.news.example.org>"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith("<https://digest.example.org/unsubscribe/")
    assert "<mailto:unsubscribe+" in unsub and "@news.example.org" in unsub
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for header in (b"List-Unsubscribe:", b"List-Unsubscribe-Post:", b"Message-ID:", b"List-Id:"):
        assert raw.count(b"\n" + header) == 1

    html = msg.get_body(preferencelist=("html",)).get_content()
    assert len(html.encode()) < 100 * 1024
    assert 'lang="en"' in html and 'role="presentation"' in html
    assert "@media" in html and 'style="' in html  # media queries kept, CSS inlined
    assert "/unsubscribe/" in html and "/preferences/" in html
    # The key takeaway comes before the study details, which come before the link.
    ta, study, link = html.index("Key takeaway"), html.index("Evidence level 2"), html.index("Read the full summary")
    assert ta < study < link

    # Message-ID stable for (issue, subscriber), stored on the ledger row.
    with session_scope(services.sessions) as s:
        row = s.scalar(select(Delivery).where(Delivery.message_id == msg["Message-ID"]))
        assert row is not None and row.status == DeliveryStatus.SENT


def test_ledger_records_what_was_carried(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    _seed(services, clock)
    run = dispatch.send_due(services, clock())
    with session_scope(services.sessions) as s:
        issue = s.get(Issue, run.plan.issue_id)
        assert issue is not None and issue.status == IssueStatus.SENT
        rows = s.execute(
            select(Delivery.status, func.count()).where(Delivery.issue_id == issue.id).group_by(Delivery.status)
        ).all()
        assert dict(rows) == {DeliveryStatus.SENT: 3}
        delivery_id = s.scalar(
            select(Delivery.id).where(Delivery.message_id == _by_rcpt(smtp_sink)["both@example.org"]["Message-ID"])
        )
        assert delivery_id is not None
        items = summaries_by_delivery(s, [delivery_id])[delivery_id]
        assert set(items) == {"cardio-1", "cardio-2", "onc-1"}
