"""Several SMTP relays in DIGEST_SMTP_URL (comma-separated, in order): a relay that is down, or
refuses by policy, hands the mail to the next one; only when every relay fails does sending pause."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink, free_port
from digest.ledger.models import Delivery, DeliveryStatus
from digest.providers.smtp.transport import SMTPConfig
from digest.subscribers.models import Suppression
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import planned_issue
from tests.unit.delivery.test_circuit import Relay

PEOPLE = [(f"f{i}@example.org", f"F {i}", ["cardiology"]) for i in range(4)]


@pytest.fixture
def relays() -> Iterator[tuple[Relay, SMTPSink, Relay, SMTPSink]]:
    first, second = Relay(), Relay()
    with SMTPSink(handler=first) as a, SMTPSink(handler=second) as b:
        first.sink, second.sink = a, b
        yield first, a, second, b


def _svc(settings: Settings, clock: Clock, url: str) -> Services:
    return build_services(settings.model_copy(update={"smtp_url": url}), clock=clock)


def _statuses(svc: Services) -> set[str]:
    with session_scope(svc.sessions) as s:
        return set(s.scalars(select(Delivery.status)))


def test_the_relay_list_keeps_the_one_url_form() -> None:
    assert SMTPConfig.from_urls("smtp://a.example:25") == [SMTPConfig.from_url("smtp://a.example:25")]
    both = SMTPConfig.from_urls("smtp://u:p%2Cq@a.example:587?starttls=1, smtps://b.example")
    assert [(c.host, c.port, c.password) for c in both] == [("a.example", 587, "p,q"), ("b.example", 465, None)]


def test_a_relay_that_is_down_hands_over_to_the_next(
    settings: Settings, clock: Clock, relays: tuple[Relay, SMTPSink, Relay, SMTPSink]
) -> None:
    _, _, _, b = relays
    svc = _svc(settings, clock, f"smtp://127.0.0.1:{free_port()}, {b.url}")
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == 4 and report.paused is None
    assert sorted(r.rcpt_tos[0] for r in b.received) == [p[0] for p in PEOPLE]
    svc.close()


def test_a_relay_refusing_by_policy_hands_over_and_fails_nobody(
    settings: Settings, clock: Clock, relays: tuple[Relay, SMTPSink, Relay, SMTPSink]
) -> None:
    first, a, _, b = relays
    first.refuse = "554 5.7.1 <f0@example.org>: Relay access denied"
    svc = _svc(settings, clock, f"{a.url},{b.url}")
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == 4 and report.failed == 0 and report.paused is None
    assert first.refused == 1 and a.received == []
    assert sorted(r.rcpt_tos[0] for r in b.received) == [p[0] for p in PEOPLE]
    assert _statuses(svc) == {DeliveryStatus.SENT}
    svc.close()


def test_when_every_relay_fails_sending_pauses(
    settings: Settings, clock: Clock, relays: tuple[Relay, SMTPSink, Relay, SMTPSink]
) -> None:
    first, a, second, b = relays
    first.refuse = second.refuse = "554 5.7.1 Relay access denied"
    svc = _svc(settings, clock, f"{a.url}, {b.url}")
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == report.failed == 0 and "5.7.1" in (report.paused or "")
    assert first.refused == second.refused == 1
    assert _statuses(svc) == {DeliveryStatus.PENDING}
    with session_scope(svc.sessions) as s:
        assert s.scalar(select(Suppression.id)) is None
    svc.close()
