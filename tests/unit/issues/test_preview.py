"""Preview as a specialty or a subscriber, the empty-audience warning, the sanitised intro, test sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.issues.preview import EmptyAudience, preview_issue, send_test
from digest.issues.service import InvalidIssue
from digest.ledger.models import Delivery
from digest.subscribers.models import Subscriber
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record

INTRO = (
    "Welcome to **this week's** picks.\n\n<script>alert('x')</script><img src=x onerror=alert(1)> "
    "[bad](javascript:alert(1)) [good](https://example.org/a)"
)


def _seed(services: Services, clock: Clock, **draft: object) -> int:
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="cardio-1",
                title="Statins after stroke",
                specialties=["cardiology"],
                published_at=days_before(now, 1),
            ),
            summary_record(
                id="onc-1", title="Immunotherapy first", specialties=["oncology"], published_at=days_before(now, 1)
            ),
        )
        past = now - timedelta(days=3)
        add_subscriber(s, "cara@example.org", ["cardiology"], name="Cara Jones", created_at=past)
        add_subscriber(s, "nora@example.org", ["neurology"], created_at=past)
        add_subscriber(s, "nico@example.org", ["neurology", "oncology"], created_at=past)
        return add_campaign(s, now, subject="Editor's picks", preheader="Three studies", intro=INTRO, **draft)


def test_preview_as_specialty_and_subscriber(services: Services, clock: Clock) -> None:
    issue_id = _seed(services, clock)
    with session_scope(services.sessions) as s:
        by_specialty = preview_issue(
            s, services.renderer, issue_id, clock(), services.plan_options(), specialty="oncology"
        )
        cara = s.scalar(select(Subscriber.id).where(Subscriber.email == "cara@example.org"))
        by_subscriber = preview_issue(
            s, services.renderer, issue_id, clock(), services.plan_options(), subscriber_id=cara
        )
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0  # nothing planned or sent
    assert by_specialty.items == ("onc-1",) and "Immunotherapy first" in by_specialty.html
    assert by_subscriber.items == ("cardio-1",) and "Hi Cara," in by_subscriber.html
    assert by_subscriber.subject == "Editor's picks"
    for html in (by_specialty.html, by_subscriber.html):
        assert "/unsubscribe/" not in html and "/preferences/" not in html and "/r/" not in html  # no tokens
        assert f"https://digest.example.org/issues/{issue_id}" in html  # view in browser


def test_intro_markdown_is_sanitised(services: Services, clock: Clock) -> None:
    issue_id = _seed(services, clock)
    with session_scope(services.sessions) as s:
        preview = preview_issue(
            s, services.renderer, issue_id, clock(), services.plan_options(), specialty="cardiology"
        )
    assert "<strong>this week's</strong>" in preview.html or "<strong>this week&#39;s</strong>" in preview.html
    lowered = preview.html.lower()
    assert (
        "<script" not in lowered
        and "alert(" not in lowered
        and "onerror" not in lowered
        and "javascript:" not in lowered
    )
    assert 'href="https://example.org/a"' in preview.html
    assert "Welcome to **this week's** picks." in preview.text and "<script" not in preview.text


def test_empty_audience_warning(services: Services, clock: Clock) -> None:
    issue_id = _seed(services, clock)
    with session_scope(services.sessions) as s:
        preview = preview_issue(
            s, services.renderer, issue_id, clock(), services.plan_options(), specialty="cardiology"
        )
    # nora (neurology only) has nothing new; nico has oncology news, so he is not counted.
    assert preview.empty == (EmptyAudience("neurology", 1),)

    pinned = _pinned_issue(services, clock)
    with session_scope(services.sessions) as s:
        assert (
            preview_issue(s, services.renderer, pinned, clock(), services.plan_options(), specialty="neurology").empty
            == ()
        )
        with pytest.raises(InvalidIssue, match="would be empty"):
            preview_issue(s, services.renderer, issue_id, clock(), services.plan_options(), specialty="neurology")


def _pinned_issue(services: Services, clock: Clock) -> int:
    with session_scope(services.sessions) as s:
        return add_campaign(s, clock(), pinned=["cardio-1"])


def test_test_send_goes_to_any_address_and_not_to_the_ledger(
    services: Services, clock: Clock, smtp_sink: SMTPSink
) -> None:
    issue_id = _seed(services, clock)
    with session_scope(services.sessions) as s:
        send_test(
            s,
            services.composer,
            services.transport,
            issue_id,
            "Proof.Reader@Elsewhere.example",
            clock(),
            services.plan_options(),
            specialty="cardiology",
        )
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
    (received,) = smtp_sink.received
    assert received.rcpt_tos == ("proof.reader@elsewhere.example",)
    msg = received.message
    assert msg["Subject"] == "[Test] Editor's picks"
    assert msg.get_content_type() == "multipart/alternative"
    assert "Statins after stroke" in msg.get_body(preferencelist=("html",)).get_content()
    with session_scope(services.sessions) as s, pytest.raises(InvalidIssue, match="invalid email"):
        send_test(
            s,
            services.composer,
            services.transport,
            issue_id,
            "nobody",
            clock(),
            services.plan_options(),
            specialty="cardiology",
        )
