"""Recording provider events (digest/events/service.py) on the database, without the web layer: each
kind changes exactly what the module says, a redelivered event changes nothing, and the mailto
unsubscribe reads the token of each recipient address once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from digest.db import session_scope
from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.models import WebhookEvent
from digest.events.service import mailbox_tokens, record_events, unsubscribe_by_mail
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber


def _sent(services: Services, email: str, provider_id: str) -> int:
    """A subscriber with one sent delivery carrying ``provider_id``; returns the delivery id."""
    with session_scope(services.sessions) as s:
        subscriber = add_subscriber(s, email, ["cardiology"])
        issue = Issue(subject="x", status=IssueStatus.SENT)
        s.add(issue)
        s.flush()
        delivery = Delivery(
            issue_id=issue.id, subscriber_id=subscriber.id, status=DeliveryStatus.SENT, provider_message_id=provider_id
        )
        s.add(delivery)
        s.flush()
        return delivery.id


def _state(services: Services) -> dict[str, Any]:
    with session_scope(services.sessions) as s:
        return {
            "suppressed": {r.value: r.reason for r in s.scalars(select(Suppression))},
            "subscribers": {r.email: r.status for r in s.scalars(select(Subscriber))},
            "deliveries": {d.id: (d.status, d.error) for d in s.scalars(select(Delivery))},
            "events": [
                (e.event_id, e.kind, e.delivery_id) for e in s.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
            ],
        }


def _record(services: Services, now: datetime, *events: DeliveryEvent) -> tuple[int, int]:
    with session_scope(services.sessions) as s:
        report = record_events(s, list(events), now)
    return report.processed, report.duplicates


def test_a_hard_bounce_fails_its_delivery_and_suppresses_the_address(services: Services, clock: Clock) -> None:
    delivery_id = _sent(services, "ann@example.org", "pm-1")
    event = DeliveryEvent("postmark", "b1", EventKind.HARD_BOUNCE, "ann@example.org", ("pm-1",), None, "mailbox gone")
    assert _record(services, clock.now, event) == (1, 0)
    state = _state(services)
    assert state["deliveries"] == {delivery_id: (DeliveryStatus.FAILED, "postmark: mailbox gone")}
    assert state["suppressed"] == {"ann@example.org": "hard_bounce"}
    assert state["subscribers"] == {"ann@example.org": SubscriberStatus.ACTIVE}  # suppressed, not unsubscribed
    assert state["events"] == [("b1", "hard_bounce", delivery_id)]


def test_a_redelivered_event_is_counted_as_a_duplicate_and_changes_nothing(services: Services, clock: Clock) -> None:
    _sent(services, "ann@example.org", "pm-1")
    event = DeliveryEvent("postmark", "c1", EventKind.COMPLAINT, "ann@example.org", ("pm-1",))
    assert _record(services, clock.now, event) == (1, 0)
    before = _state(services)
    assert _record(services, clock.now, event, event) == (0, 2)
    assert _state(services) == before
    # The same id from another provider is another event.
    assert _record(services, clock.now, DeliveryEvent("sendgrid", "c1", EventKind.SOFT_BOUNCE, "ann@example.org")) == (
        1,
        0,
    )


def test_a_complaint_suppresses_and_unsubscribes(services: Services, clock: Clock) -> None:
    delivery_id = _sent(services, "ann@example.org", "pm-1")
    _record(services, clock.now, DeliveryEvent("postmark", "c1", EventKind.COMPLAINT, "ann@example.org", ("pm-1",)))
    state = _state(services)
    assert state["suppressed"] == {"ann@example.org": "complaint"}  # the stronger reason stays
    assert state["subscribers"] == {"ann@example.org": SubscriberStatus.UNSUBSCRIBED}
    assert state["deliveries"][delivery_id][0] == DeliveryStatus.SENT  # it did arrive


@pytest.mark.parametrize("kind", [EventKind.SOFT_BOUNCE, EventKind.DROPPED])
def test_soft_bounces_are_recorded_only_and_drops_fail_the_delivery(
    services: Services, clock: Clock, kind: EventKind
) -> None:
    delivery_id = _sent(services, "ann@example.org", "sg-1")
    _record(services, clock.now, DeliveryEvent("sendgrid", "e1", kind, "ann@example.org", ("other", "sg-1"), None, "x"))
    state = _state(services)
    expected = DeliveryStatus.FAILED if kind == EventKind.DROPPED else DeliveryStatus.SENT
    assert state["deliveries"][delivery_id][0] == expected
    assert state["suppressed"] == {}
    assert state["subscribers"] == {"ann@example.org": SubscriberStatus.ACTIVE}
    assert state["events"] == [("e1", kind, delivery_id)]  # linked through the second candidate id


def test_an_unsubscribe_for_an_unknown_address_still_suppresses_it(services: Services, clock: Clock) -> None:
    _record(services, clock.now, DeliveryEvent("sendgrid", "u1", EventKind.UNSUBSCRIBE, "stranger@example.org"))
    state = _state(services)
    assert state["suppressed"] == {"stranger@example.org": "unsubscribed"}
    assert state["events"] == [("u1", "unsubscribe", None)]


def test_mailbox_tokens_take_each_unsubscribe_address_once() -> None:
    recipients = [
        "<Unsubscribe+AbC@Digest.Example.org>",
        "unsubscribe+abc@digest.example.org",
        "unsubscribe+def@other.example.org",  # another domain
        "news+ghi@digest.example.org",  # another mailbox
        "unsubscribe+@digest.example.org",  # no token
        "unsubscribe+jkl@digest.example.org",
    ]
    assert mailbox_tokens(recipients, "digest.example.org") == ["abc", "jkl"]


def test_unsubscribe_by_mail_ignores_forged_tokens(services: Services, clock: Clock) -> None:
    _sent(services, "ann@example.org", "pm-1")
    with session_scope(services.sessions) as s:
        subscriber_id = s.scalars(select(Subscriber.id)).one()
    token = services.tokens.mailbox(subscriber_id)
    domain = "digest.example.org"
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    with session_scope(services.sessions) as s:
        assert unsubscribe_by_mail(s, services.tokens, [f"unsubscribe+{forged}@{domain}"], domain, clock.now) == 0
    assert _state(services)["subscribers"] == {"ann@example.org": SubscriberStatus.ACTIVE}
    recipients = [f"unsubscribe+{forged}@{domain}", f"unsubscribe+{token.upper()}@{domain}"]
    with session_scope(services.sessions) as s:
        assert unsubscribe_by_mail(s, services.tokens, recipients, domain, clock.now) == 1
    assert _state(services)["subscribers"] == {"ann@example.org": SubscriberStatus.UNSUBSCRIBED}
