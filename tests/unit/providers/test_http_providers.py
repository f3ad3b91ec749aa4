"""Postmark and SendGrid through a local server that follows their documented formats: per-message
errors land on the right ledger rows, throttling is retried, server errors leave rows for later."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.ledger.models import Delivery, DeliveryStatus
from digest.providers.postmark import PostmarkTransport
from digest.providers.sendgrid import SendGridTransport
from digest.subscribers.models import Subscriber, Suppression
from digest.wiring import Services, build_services, make_transport
from tests.conftest import Clock
from tests.factories import outgoing, planned_issue
from tests.provider_server import ProviderServer

PEOPLE = [(f"m{i}@example.org", f"M {i}", ["cardiology"]) for i in range(5)]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as srv:
        yield srv


@pytest.fixture(params=["postmark", "sendgrid"])
def svc(request: pytest.FixtureRequest, settings: Settings, clock: Clock, server: ProviderServer) -> Iterator[Services]:
    provider = settings.model_copy(
        update={"transport": request.param, "api_token": server.token, "api_url": server.url}
    )
    services = build_services(provider, clock=clock)
    yield services
    services.close()


def _ledger(svc: Services) -> dict[str, Delivery]:
    with session_scope(svc.sessions) as s:
        return {
            email: d
            for d, email in s.execute(
                select(Delivery, Subscriber.email).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            )
        }


def test_per_message_errors_map_onto_the_right_rows(svc: Services, server: ProviderServer, clock: Clock) -> None:
    server.inactive = {"m1@example.org", "m3@example.org"}
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == 3 and report.failed == 2
    ledger = _ledger(svc)
    accepted = {a.to: a for a in server.accepted}
    assert set(accepted) == {"m0@example.org", "m2@example.org", "m4@example.org"}
    for email, row in ledger.items():
        if email in server.inactive:
            assert row.status == DeliveryStatus.FAILED and row.provider_message_id is None
        else:
            assert row.status == DeliveryStatus.SENT
            assert row.provider_message_id == accepted[email].provider_id  # the provider's id, for webhooks
            assert accepted[email].headers["Message-ID"] == row.message_id
            assert accepted[email].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with session_scope(svc.sessions) as s:
        assert set(s.scalars(select(Suppression.value))) == server.inactive
    if svc.transport.name == "postmark":
        assert len(server.requests) == 1  # one batch call for the chunk


def test_throttling_is_retried_within_the_call(svc: Services, server: ProviderServer, clock: Clock) -> None:
    server.fail_next.extend([(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "0"})] * 2)
    ids = planned_issue(svc, clock(), PEOPLE[:2])

    report = svc.delivery.deliver(ids)

    assert report.sent == 2
    assert sorted(a.to for a in server.accepted) == ["m0@example.org", "m1@example.org"]


def test_a_long_retry_after_holds_every_worker_back_without_spending_attempts(
    svc: Services, server: ProviderServer, clock: Clock
) -> None:
    server.fail_next.append((429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": "120"}))
    ids = planned_issue(svc, clock(), PEOPLE[:2])

    first = svc.delivery.deliver(ids)

    assert first.sent == 0 and sorted(first.throttled) == ids and first.wait == 120 and first.retry == []
    assert len(server.requests) == 1  # no sleeping on it inside the call
    assert all(d.status == DeliveryStatus.PENDING and d.attempts == 0 for d in _ledger(svc).values())
    assert svc.delivery.deliver(ids).sent == 0 and len(server.requests) == 1  # still waiting
    clock.advance(seconds=120)
    assert svc.delivery.deliver(ids).sent == 2
    assert sorted(a.to for a in server.accepted) == ["m0@example.org", "m1@example.org"]


def test_server_error_leaves_the_rows_for_a_later_attempt(svc: Services, server: ProviderServer, clock: Clock) -> None:
    server.fail_next.append((500, {"ErrorCode": 500, "Message": "Internal Server Error"}, {}))
    ids = planned_issue(svc, clock(), PEOPLE[:2])

    first = svc.delivery.deliver(ids)
    assert first.retry and all(d.status != DeliveryStatus.FAILED for d in _ledger(svc).values())
    svc.delivery.deliver(ids)

    assert sorted(a.to for a in server.accepted) == ["m0@example.org", "m1@example.org"]  # once each
    assert {d.status for d in _ledger(svc).values()} == {DeliveryStatus.SENT}


def test_a_bad_token_sends_nothing_and_fails_nothing(svc: Services, server: ProviderServer, clock: Clock) -> None:
    server.token = "another-token"
    ids = planned_issue(svc, clock(), PEOPLE[:2])

    report = svc.delivery.deliver(ids)

    assert report.sent == 0 and report.retry == [] and "HTTP 401" in (report.paused or "")
    rows = _ledger(svc).values()
    assert all(d.status == DeliveryStatus.PENDING and d.attempts == 0 for d in rows)
    assert any("DIGEST_API_TOKEN" in (d.error or "") for d in rows)  # the rows it tried say why


def test_postmark_splits_calls_at_500_messages(server: ProviderServer) -> None:
    transport = PostmarkTransport(server.token, api_url=server.url)
    results = transport.send([outgoing(i, f"n{i}@example.org") for i in range(1, 503)])
    assert len(results) == 502 and all(r.accepted for r in results)
    assert [len(body) for _, _, body in server.requests] == [500, 2]
    transport.close()


def test_wiring_picks_the_provider_with_its_real_default_url(tmp_path) -> None:
    base = {"var_dir": tmp_path, "secret_key": "k", "api_token": "t"}
    postmark = make_transport(Settings(**base, transport="postmark"))
    sendgrid = make_transport(Settings(**base, transport="sendgrid"))
    assert isinstance(postmark, PostmarkTransport) and postmark.url == "https://api.postmarkapp.com/email/batch"
    assert isinstance(sendgrid, SendGridTransport) and sendgrid.url == "https://api.sendgrid.com/v3/mail/send"
