"""`digest send --issue ID`: a campaign now, through the configured SMTP server."""

from __future__ import annotations

from datetime import timedelta

from digest.db import make_engine, make_session_factory, session_scope, utcnow
from digest.delivery.sink import SMTPSink
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record


def test_send_issue_now_and_not_twice(cli, settings, smtp_sink: SMTPSink) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as s:
        add_summaries(s, summary_record(id="pin", published_at=days_before(utcnow(), 1)))
        add_subscriber(s, "a@example.org", ["neurology"], cadence="weekly", created_at=utcnow() - timedelta(days=1))
        issue_id = add_campaign(s, utcnow(), subject="Now", pinned=["pin"])
    engine.dispose()
    dry = cli("send", "--issue", str(issue_id), "--dry-run")
    assert dry.exit_code == 0 and "would go to 1 subscriber" in dry.output and smtp_sink.received == []
    result = cli("send", "--issue", str(issue_id))
    assert result.exit_code == 0, result.output
    assert [r.rcpt_tos for r in smtp_sink.received] == [("a@example.org",)]
    again = cli("send", "--issue", str(issue_id))
    assert again.exit_code == 2 and "it is sent" in again.output
    assert len(smtp_sink.received) == 1
