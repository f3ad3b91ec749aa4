"""The automatic digests as runs: pause and resume through the dispatcher (a real SMTP server
receives what goes out), and a run's figures equal the ledger counted by hand in SQL."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.issues.links import follow
from digest.issues.runs import flow_state, recent_runs, run_detail, set_paused
from digest.subscribers.lifecycle import unsubscribe
from digest.subscribers.models import SuppressionReason
from digest.subscribers.suppression import suppress
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

READERS = {
    "cara@example.org": ["cardiology"],
    "onco@example.org": ["oncology"],
    "both@example.org": ["cardiology", "oncology"],
}
TRACKED = re.compile(r"https://digest\.example\.org/r/[^\s\"'<>]+")


def _seed(services: Services, clock: Clock) -> None:
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="cardio-1",
                specialties=["cardiology"],
                published_at=days_before(now, 1),
                source_url="https://journal.example/c1",
            ),
            summary_record(
                id="cardio-2",
                specialties=["cardiology"],
                published_at=days_before(now, 2),
                source_url="https://journal.example/c2",
            ),
            summary_record(
                id="onc-1",
                specialties=["oncology"],
                published_at=days_before(now, 1),
                source_url="https://journal.example/o1",
            ),
        )
        for email, chosen in READERS.items():
            add_subscriber(s, email, chosen, created_at=now - timedelta(days=3))


def test_a_paused_flow_sends_nothing_and_resuming_sends_what_was_due_once(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        set_paused(s, True, clock())
    paused = dispatch.send_due(services, clock())
    assert paused.digests_paused and paused.plan.deliveries == 0
    assert smtp_sink.received == []
    with session_scope(services.sessions) as s:
        assert s.execute(text("SELECT count(*) FROM deliveries")).scalar() == 0
        assert flow_state(s).paused

    clock.advance(minutes=1)
    assert dispatch.send_due(services, clock()).plan.deliveries == 0  # still paused a tick later
    assert smtp_sink.received == []

    with session_scope(services.sessions) as s:
        set_paused(s, False, clock())
    resumed = dispatch.send_due(services, clock())
    assert not resumed.digests_paused and resumed.plan.deliveries == 3
    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == sorted(READERS)

    clock.advance(minutes=1)
    assert dispatch.send_due(services, clock()).plan.deliveries == 0  # exactly once
    assert len(smtp_sink.received) == 3


def test_pausing_twice_is_one_change(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        first = set_paused(s, True, clock())
    clock.advance(hours=1)
    with session_scope(services.sessions) as s:
        again = set_paused(s, True, clock())
    assert again.paused and again.changed_at == first.changed_at


def test_run_figures_equal_the_ledger(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    """Digests carry tracked links; clicks, an unsubscribe and a failure show in the run's figures
    exactly as SQL over the ledger counts them."""
    _seed(services, clock)
    dispatch.send_due(services, clock())
    received = {r.rcpt_tos[0]: r.message for r in smtp_sink.received}
    html = received["both@example.org"].get_body(preferencelist=("html",)).get_content()
    links = sorted(set(TRACKED.findall(html)))
    assert links, "a digest carries tracked item links"
    clock.advance(minutes=5)
    with session_scope(services.sessions) as s:
        targets = [follow(s, services.links, link.rsplit("/r/", 1)[1], clock()) for link in links[:2]]
        follow(s, services.links, links[0].rsplit("/r/", 1)[1], clock())  # the same link twice
        s.execute(
            text(
                "UPDATE deliveries SET status = 'failed', sent_at = NULL WHERE subscriber_id = "
                "(SELECT id FROM subscribers WHERE email = 'onco@example.org')"
            )
        )
    with session_scope(services.sessions) as s:
        unsubscribe(
            s,
            s.execute(text("SELECT id FROM subscribers WHERE email = 'cara@example.org'")).scalar_one(),
            clock(),
            source="link",
        )
        # onco's failed message hard-bounced; both@ marked the digest as spam.
        suppress(s, "onco@example.org", SuppressionReason.HARD_BOUNCE)
        suppress(s, "both@example.org", SuppressionReason.COMPLAINT)

    with session_scope(services.sessions) as s:
        runs = recent_runs(s)
        assert [r.period_key for r in runs] == ["daily:2026-11-27"]
        run = runs[0]
        ledger = dict(
            s.execute(
                text(
                    "SELECT d.status, count(*) FROM deliveries d JOIN issues i ON i.id = d.issue_id "
                    "WHERE i.kind = 'digest' AND d.period_key = 'daily:2026-11-27' GROUP BY d.status"
                )
            ).all()
        )
        clicks, unique = s.execute(
            text(
                "SELECT count(c.id), count(DISTINCT c.delivery_id) "
                "FROM clicks c JOIN deliveries d ON d.id = c.delivery_id "
                "WHERE d.period_key = 'daily:2026-11-27'"
            )
        ).one()
        per_url = dict(
            s.execute(
                text(
                    "SELECT c.url, count(*) FROM clicks c JOIN deliveries d ON d.id = c.delivery_id "
                    "WHERE d.period_key = 'daily:2026-11-27' GROUP BY c.url"
                )
            ).all()
        )
        suppressed = dict(
            s.execute(
                text(
                    "SELECT x.reason, count(*) FROM suppressions x JOIN subscribers sub ON sub.email = x.value "
                    "JOIN deliveries d ON d.subscriber_id = sub.id WHERE d.period_key = 'daily:2026-11-27' "
                    "GROUP BY x.reason"
                )
            ).all()
        )
        detail = run_detail(s, run.period_key)
    assert (run.recipients, run.sent, run.failed) == (sum(ledger.values()), ledger["sent"], ledger["failed"])
    assert (run.clicks, run.unique_clicks) == (clicks, unique) == (3, 1)
    assert run.unsubscribes == 1
    assert (run.bounced, run.complaints) == (suppressed["hard_bounce"], suppressed["complaint"]) == (1, 1)
    assert detail is not None
    assert {link.url: link.clicks for link in detail.links} == per_url
    assert set(per_url) == set(targets)
    carried = {s.summary_id: s for s in detail.summaries}
    assert carried["cardio-1"].carried == 2  # cara and both (onco's message failed)
    assert sum(s.clicks for s in detail.summaries) == clicks
