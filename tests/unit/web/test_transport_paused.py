"""What an operator sees while the transport circuit is open: the reason on the dashboard (the
issues list and the paused issue's page) and on /metrics; resuming the issue closes the circuit.
And while a throttle keeps the shared send rate down: the rate on both."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.ratelimit import AdaptiveRate
from digest.ledger.models import Issue, IssueStatus
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign
from tests.unit.web.conftest import csrf_of

REASON = "SMTP server 127.0.0.1:2525 refused the login for 'digest': 535 5.7.8 Authentication credentials invalid"


def test_the_dashboard_and_metrics_show_why_sending_is_paused(
    services: Services, editor_client: TestClient, clock: Clock
) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock())
        s.execute(Issue.__table__.update().values(status=IssueStatus.SENDING))  # type: ignore[attr-defined]
    assert services.delivery.circuit.open(REASON)
    services.settings.metrics_token = "scrape-token"  # the test client is not on loopback
    scrape = {"Authorization": "Bearer scrape-token"}

    listing = editor_client.get("/editor/issues").text
    assert "Sending is paused" in listing and "535 5.7.8 Authentication credentials invalid" in listing
    page = editor_client.get(f"/editor/issues/{issue_id}").text
    assert 'id="state">paused<' in page and "535 5.7.8" in page
    metrics = editor_client.get("/metrics", headers=scrape).text
    assert "digest_transport_paused{" in metrics and "535 5.7.8 Authentication credentials invalid" in metrics

    form = editor_client.get(f"/editor/issues/{issue_id}").text
    editor_client.post(f"/editor/issues/{issue_id}/resume", data={"csrf_token": csrf_of(form)})
    with session_scope(services.sessions) as s:
        assert s.scalar(select(Issue.status).where(Issue.id == issue_id)) != IssueStatus.PAUSED
    assert "Sending is paused" not in editor_client.get("/editor/issues").text
    assert (
        'digest_transport_paused{reason="",transport="smtp"} 0.0' in editor_client.get("/metrics", headers=scrape).text
    )


def test_the_dashboard_and_metrics_show_the_send_rate_a_throttle_cut(
    services: Services, editor_client: TestClient, redis_url: str
) -> None:
    services.settings.metrics_token = "scrape-token"
    scrape = {"Authorization": "Bearer scrape-token"}
    assert "digest_send_rate +Inf" in editor_client.get("/metrics", headers=scrape).text  # no Redis: unlimited
    services.settings.send_rate = 20
    services.delivery.limiter = rate = AdaptiveRate(redis.Redis.from_url(redis_url), 20)
    assert "Sending is slowed" not in editor_client.get("/editor/issues").text

    rate.slow_down("smtp", quiet=30)

    listing = editor_client.get("/editor/issues").text
    assert "Sending is slowed" in listing and "send 10.0 messages a second for now (20 configured)" in listing
    assert "digest_send_rate 10.0" in editor_client.get("/metrics", headers=scrape).text


def test_the_dashboard_and_metrics_stay_up_when_the_rate_s_redis_does_not_answer(
    services: Services, editor_client: TestClient
) -> None:
    services.settings.metrics_token = "scrape-token"
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)  # nothing listens on port 1
    services.delivery.limiter = AdaptiveRate(gone, 20)

    listing = editor_client.get("/editor/issues")
    metrics = editor_client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})

    assert listing.status_code == 200 and "Sending is slowed" not in listing.text
    assert metrics.status_code == 200 and "digest_send_rate" not in metrics.text
