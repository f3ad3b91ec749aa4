"""Amazon SES through boto3 (SESv2 SendEmail, raw MIME) against a local stand-in of its API
(``endpoint_url``): messages arrive as rendered with the configuration set; refused credentials pause
sending without failing anyone; throttling spends no attempt; a rejected message fails alone."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.ledger.models import Delivery, DeliveryStatus
from digest.subscribers.models import Suppression
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import planned_issue
from tests.provider_server import ProviderServer

PEOPLE = [(f"s{i}@example.org", f"S {i}", ["cardiology"]) for i in range(3)]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    with ProviderServer(token="AKIDDIGESTTEST") as srv:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", srv.token)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield srv


@pytest.fixture
def svc(settings: Settings, clock: Clock, server: ProviderServer) -> Iterator[Services]:
    ses = settings.model_copy(
        update={
            "transport": "ses",
            "ses_region": "eu-west-1",
            "ses_configuration_set": "digest-events",
            "api_url": server.url,
        }
    )
    services = build_services(ses, clock=clock)
    yield services
    services.close()


def _rows(svc: Services) -> list[Delivery]:
    with session_scope(svc.sessions) as s:
        rows = list(s.scalars(select(Delivery).order_by(Delivery.id)))
        s.expunge_all()
        return rows


def test_ses_sends_the_raw_message_with_the_configuration_set(
    svc: Services, server: ProviderServer, clock: Clock
) -> None:
    ids = planned_issue(svc, clock(), PEOPLE)

    assert svc.delivery.deliver(ids).sent == 3

    assert sorted(a.to for a in server.accepted) == [p[0] for p in PEOPLE]
    for path, _, body in server.requests:
        assert path == "/v2/email/outbound-emails"
        assert body["ConfigurationSetName"] == "digest-events"
        assert body["FromEmailAddress"] == "digest@news.example.org"
        raw = base64.b64decode(body["Content"]["Raw"]["Data"])
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw and b"Feedback-ID: " in raw
    assert {r.provider_message_id for r in _rows(svc)} == {a.provider_id for a in server.accepted}


def test_refused_credentials_pause_sending_and_fail_nobody(svc: Services, server: ProviderServer, clock: Clock) -> None:
    good, server.token = server.token, "AKIDROTATED"
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == report.failed == 0 and "UnrecognizedClientException" in (report.paused or "")
    assert all(r.status == DeliveryStatus.PENDING and r.attempts == 0 for r in _rows(svc))
    server.token = good  # the key is fixed; the next probe finds the account working
    clock.advance(seconds=svc.settings.probe_first_seconds)
    from digest import dispatch

    assert dispatch.send_due(svc).resumed
    assert sorted(a.to for a in server.accepted) == [p[0] for p in PEOPLE]


def test_throttling_spends_no_attempt_and_a_rejected_message_fails_alone(
    svc: Services, server: ProviderServer, clock: Clock
) -> None:
    server.fail_next.append(
        (429, {"message": "Maximum sending rate exceeded."}, {"x-amzn-ErrorType": "TooManyRequestsException"})
    )
    ids = planned_issue(svc, clock(), PEOPLE)

    first = svc.delivery.deliver(ids)
    assert first.sent == 0 and sorted(first.throttled) == ids
    assert all(r.attempts == 0 for r in _rows(svc))

    clock.advance(seconds=first.wait)
    server.fail_next.append(
        (400, {"message": "Message content was rejected."}, {"x-amzn-ErrorType": "MessageRejected"})
    )
    second = svc.delivery.deliver(ids)
    assert second.sent == 2 and second.failed == 1
    [failed] = [r for r in _rows(svc) if r.status == DeliveryStatus.FAILED]
    assert "MessageRejected" in (failed.error or "")
    with session_scope(svc.sessions) as s:
        assert s.scalar(select(Suppression.id)) is None  # the address is not to blame
