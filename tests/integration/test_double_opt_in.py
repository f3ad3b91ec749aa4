"""Double opt-in end to end through a real SMTP server: sign up, read the confirmation, follow the
link, receive the next digest; unsubscribing and signing up again works the same way."""

from __future__ import annotations

import re
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.models import Suppression
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_summaries, days_before, summary_record


def _confirm_link(mail: EmailMessage, base_url: str) -> str:
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    [link] = set(re.findall(re.escape(base_url) + r"/confirm/[\w.\-]+", text))
    assert link in html
    return link.removeprefix(base_url)


def _digests_to(sink: SMTPSink, email: str) -> list[EmailMessage]:
    return [r.message for r in sink.received if r.rcpt_tos == (email,) and r.message["List-Unsubscribe"]]


def test_sign_up_confirm_and_receive_the_next_digest(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    base = services.settings.base_url
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology"], published_at=days_before(clock(), 0.5)))

    form = {
        "email": "Reader@Example.org",
        "specialties": ["cardiology"],
        "cadence": "daily",
        "timezone": "Europe/Paris",
    }
    assert web.post("/subscribe", data=form).status_code == 200

    # Unconfirmed: a due run sends nothing to them.
    clock.advance(days=1)
    dispatch.send_due(services, clock())
    [confirmation] = smtp_sink.messages
    assert confirmation["To"] == "reader@example.org"
    link = _confirm_link(confirmation, base)

    page = web.get(link)
    assert page.status_code == 200 and "You are subscribed" in page.text
    assert web.get(link).status_code == 200  # following it twice is fine

    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c2", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    clock.advance(days=1)
    dispatch.send_due(services, clock())
    [digest] = _digests_to(smtp_sink, "reader@example.org")
    assert "Takeaway" in digest.get_body(preferencelist=("plain",)).get_content()


def test_unsubscribe_then_sign_up_again_lifts_only_the_unsubscribe(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    base = services.settings.base_url
    form = {"email": "back@example.org", "specialties": ["cardiology"], "timezone": "UTC"}
    web.post("/subscribe", data=form)
    web.get(_confirm_link(smtp_sink.messages[-1], base))
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    clock.advance(days=1)
    dispatch.send_due(services, clock())
    [digest] = _digests_to(smtp_sink, "back@example.org")
    one_click = re.search(r"<(https://[^>]+)>", digest["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    assert web.post(one_click.removeprefix(base), data={"List-Unsubscribe": "One-Click"}).status_code == 200

    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c2", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    clock.advance(days=1)
    dispatch.send_due(services, clock())
    assert len(_digests_to(smtp_sink, "back@example.org")) == 1  # nothing after the unsubscribe

    web.post("/subscribe", data=form)
    web.get(_confirm_link(smtp_sink.messages[-1], base))
    with session_scope(services.sessions) as s:
        assert s.scalars(select(Suppression.value)).all() == []
        add_summaries(s, summary_record(id="c3", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    clock.advance(days=1)
    dispatch.send_due(services, clock())
    assert len(_digests_to(smtp_sink, "back@example.org")) == 2
