"""Urgent safety alerts through a real SMTP server: once to every confirmed subscriber of the
summary's specialties, outside their cadence; never to those who turned safety alerts off,
unsubscribed, are suppressed, unconfirmed or follow other specialties."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.service import import_summaries
from digest.ledger.models import Issue, IssueKind
from digest.subscribers.lifecycle import unsubscribe
from digest.subscribers.models import SuppressionReason
from digest.subscribers.schema import SubscriberIn
from digest.subscribers.service import upsert_subscriber
from digest.subscribers.suppression import suppress
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, summary_record

SAFETY = "The regulator warns of liver injury: check liver function before each dose."
EXPECTED = {"cardio@example.org", "onc-patient@example.org"}


def _text(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def seed_alert_audience(services: Services, clock: Clock) -> None:
    """Two who must get the alert, and one of each kind who must not."""
    past = clock() - timedelta(days=3)
    with session_scope(services.sessions) as s:
        add_subscriber(s, "cardio@example.org", ["cardiology"], created_at=past, cadence="weekly")
        add_subscriber(s, "onc-patient@example.org", ["oncology"], edition="patient", created_at=past)
        add_subscriber(s, "no-alerts@example.org", ["cardiology"], created_at=past).safety_alerts = False
        gone = add_subscriber(s, "gone@example.org", ["cardiology"], created_at=past)
        s.flush()
        unsubscribe(s, gone.id, clock(), source="link")
        add_subscriber(s, "bounced@example.org", ["cardiology"], created_at=past)
        suppress(s, "bounced@example.org", SuppressionReason.HARD_BOUNCE)
        add_subscriber(s, "neuro@example.org", ["neurology"], created_at=past)
        upsert_subscriber(s, SubscriberIn(email="unconfirmed@example.org", specialties=["cardiology"]), confirmed=False)


def alert_record(**overrides: object) -> dict[str, object]:
    record = summary_record(
        id="drug-x",
        title="Drug X: liver injury",
        specialties=["cardiology", "oncology"],
        safety=SAFETY,
        published_at="2026-11-20T09:00:00Z",  # outside the digest window: only the alert carries it
        urgent=True,
    )
    record.update(overrides)
    return record


def test_urgent_record_alerts_each_subscriber_of_its_specialties_once(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    seed_alert_audience(services, clock)
    record = alert_record()
    with session_scope(services.sessions) as s:
        import_summaries(s, [(1, record)])

    run = dispatch.send_due(services, clock())  # the next beat tick (or `digest send`)
    assert len(run.alerts) == 1
    got = {r.rcpt_tos[0]: r.message for r in smtp_sink.received}
    assert set(got) == EXPECTED and len(smtp_sink.received) == 2  # the weekly reader too: outside their cadence
    for rcpt, msg in got.items():
        assert msg["Subject"] == "Safety alert: Drug X: liver injury"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = _text(msg)
        assert SAFETY in text
        if rcpt == "onc-patient@example.org":
            assert "talk to your care team first" in text

    # Again: the next cycle, and the same urgent record imported again, send nothing more.
    smtp_sink.clear()
    with session_scope(services.sessions) as s:
        assert import_summaries(s, [(1, record)]).unchanged == 1
    assert dispatch.send_due(services, clock()).alerts == []
    assert smtp_sink.received == []
    with session_scope(services.sessions) as s:
        assert len(s.scalars(select(Issue).where(Issue.kind == IssueKind.ALERT)).all()) == 1
