"""Outgoing webhooks through a real ``celery worker`` (prefork, 2 processes) on Redis: readers sign
up, confirm and unsubscribe through the web app (interleaved across readers); a receiver on loopback
that checks every signature with the ``standardwebhooks`` package gets each event exactly once, in
order for each reader, and nothing the request waited for; a receiver answering 500 gets the
configured number of attempts for each event, after which every event is marked failed and listed
by ``digest webhooks list``, while each reader's later events still waited for the earlier ones.
A sign-up and a one-click unsubscribe answer while a slow receiver is still holding the event they
caused (the request never waits for it), and the events arrive afterwards through the worker.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.integrations.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from digest.integrations.webhooks import new_secret
from digest.rights import find_subscriber
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.wiring import Services, build_services
from tests.conftest import PG_URL
from tests.integration.test_celery_worker import _digest, worker  # noqa: F401 (the worker fixture)
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

READERS = 12
ATTEMPTS = 3
WAIT = 180.0


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def worker_env(redis_url: str, clean_db: str, smtp_sink: SMTPSink, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") or k.startswith("DIGEST_TEST_")}
    env.update(
        DIGEST_DATABASE_URL=clean_db,
        DIGEST_BROKER_URL=redis_url,
        DIGEST_SMTP_URL=smtp_sink.url,
        DIGEST_TRANSPORT="smtp",
        DIGEST_VAR_DIR=str(tmp_path / "var"),
        DIGEST_SECRET_KEY="webhook-test-secret",
        DIGEST_BASE_URL="https://digest.example.org",
        DIGEST_FROM="Evidence Digest <digest@news.example.org>",
        DIGEST_WEBHOOK_MAX_ATTEMPTS=str(ATTEMPTS),
        DIGEST_WEBHOOK_RETRY_SECONDS="0.3",
        DIGEST_WEBHOOK_TIMEOUT_SECONDS="90",  # longer than a held receiver waits (HOLD_LIMIT)
        DIGEST_SIGNUPS_PER_CLIENT="1000",
    )
    return env


@pytest.fixture
def producer(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Services]:
    """The web side's services: the same database and broker as the worker."""
    settings = Settings(
        var_dir=tmp_path / "web-var",
        database_url=worker_env["DIGEST_DATABASE_URL"],
        broker_url=worker_env["DIGEST_BROKER_URL"],
        secret_key=worker_env["DIGEST_SECRET_KEY"],
        base_url=worker_env["DIGEST_BASE_URL"],
        from_=worker_env["DIGEST_FROM"],
        smtp_url=worker_env["DIGEST_SMTP_URL"],
        signups_per_client=1000,
    )
    services = build_services(settings)
    yield services
    services.close()


def _endpoint(services: Services, receiver: WebhookReceiver, path: str) -> int:
    """An endpoint for subscribed, confirmed and unsubscribed at ``path`` of the receiver."""
    with session_scope(services.sessions) as s:
        row = WebhookEndpoint(url=receiver.url(path), secret=new_secret(), events="subscribed confirmed unsubscribed")
        s.add(row)
        s.flush()
        receiver.secrets[path] = row.secret
        return row.id


def _statuses(services: Services, endpoint_id: int) -> Counter[str]:
    with session_scope(services.sessions) as s:
        return Counter(s.scalars(select(WebhookDelivery.status).where(WebhookDelivery.endpoint_id == endpoint_id)))


@pytest.mark.parametrize("database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True)
def test_signed_events_once_in_order_and_failures_retried_then_marked(
    worker: object,  # noqa: F811 (the fixture imported above)
    producer: Services,
    receiver: WebhookReceiver,
    worker_env: dict[str, str],
) -> None:
    good = _endpoint(producer, receiver, "/ok")
    bad = _endpoint(producer, receiver, "/down")
    receiver.failing.add("/down")

    from digest.web.app import create_app

    emails = [f"reader{i:02d}@example.org" for i in range(READERS)]
    with TestClient(create_app(producer), follow_redirects=False) as web:
        for email in emails:
            assert web.post("/subscribe", data={"email": email, "specialties": ["cardiology"]}).status_code == 200
        with session_scope(producer.sessions) as s:
            ids = {}
            for email in emails:
                row = find_subscriber(s, email)
                assert row is not None
                ids[email] = row.id
        for email in emails:
            token = producer.tokens.make_confirm(ids[email], producer.clock())
            assert web.get(f"/confirm/{token}").status_code == 200
        for email in emails:
            token = producer.tokens.make(Purpose.UNSUBSCRIBE, ids[email])
            assert web.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200

    expected = 3 * READERS
    deadline = time.monotonic() + WAIT
    while (
        _statuses(producer, good)[WebhookStatus.DELIVERED] < expected
        or _statuses(producer, bad)[WebhookStatus.FAILED] < expected
    ):
        if worker.poll() is not None or time.monotonic() > deadline:  # type: ignore[attr-defined]
            pytest.fail(
                f"webhooks not done: ok {_statuses(producer, good)}, down {_statuses(producer, bad)}\n"
                + worker.log.read_text()[-4000:]  # type: ignore[attr-defined]
            )
        time.sleep(0.3)

    # The good receiver: every event once, signature verified, in order per reader.
    got = receiver.at("/ok")
    assert len(got) == expected and all(r.verified and r.status == 204 for r in got)
    assert set(Counter(r.message_id for r in got).values()) == {1}
    per_reader: dict[int | None, list[str]] = defaultdict(list)
    for r in got:
        per_reader[r.subscriber_id].append(r.type)
    assert per_reader == {ids[e]: ["subscribed", "confirmed", "unsubscribed"] for e in emails}

    # The failing receiver: ATTEMPTS tries of each event, then failed; a reader's next event was
    # first tried only after the previous one had failed for good.
    down = receiver.at("/down")
    assert Counter(Counter(r.message_id for r in down).values()) == {ATTEMPTS: expected}
    assert all(r.verified for r in down)
    for subscriber_id in ids.values():
        kinds = [r.type for r in down if r.subscriber_id == subscriber_id]
        assert kinds == ["subscribed"] * ATTEMPTS + ["confirmed"] * ATTEMPTS + ["unsubscribed"] * ATTEMPTS
    with session_scope(producer.sessions) as s:
        rows = s.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == bad)).all()
        assert {(r.status, r.attempts, r.last_status_code, r.last_error) for r in rows} == {
            (WebhookStatus.FAILED, ATTEMPTS, 500, "answered 500")
        }
    listing = _digest({**worker_env, "COLUMNS": "200"}, "webhooks", "list")
    [row] = [line for line in listing.splitlines() if "/down" in line]
    assert [c.strip() for c in row.split("│") if c.strip()][-3:] == ["0", "0", str(expected)]


@pytest.mark.parametrize("database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True)
def test_the_request_that_causes_an_event_does_not_wait_for_the_receiver(
    worker: object,  # noqa: F811 (the fixture imported above)
    producer: Services,
    receiver: WebhookReceiver,
) -> None:
    slow = _endpoint(producer, receiver, "/slow")
    receiver.held.add("/slow")  # it answers only when the test releases it (at most HOLD_LIMIT later)

    from digest.web.app import create_app

    with TestClient(create_app(producer), follow_redirects=False) as web:
        signed_up = web.post("/subscribe", data={"email": "quick@example.org", "specialties": ["cardiology"]})
        # The sign-up answered, and the receiver had not: it cannot answer before it is released.
        assert signed_up.status_code == 200 and not receiver.answered.is_set()
        # The worker is delivering "subscribed" meanwhile: the receiver has it, and holds it.
        assert receiver.arrived.wait(WAIT), worker.log.read_text()[-4000:]  # type: ignore[attr-defined]
        assert not receiver.answered.is_set()
        with session_scope(producer.sessions) as s:
            row = find_subscriber(s, "quick@example.org")
            assert row is not None
            reader = row.id
        # A one-click unsubscribe while the receiver still holds the first event answers too.
        token = producer.tokens.make(Purpose.UNSUBSCRIBE, reader)
        gone = web.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
        assert gone.status_code == 200 and not receiver.answered.is_set()
        with session_scope(producer.sessions) as s:
            [(status, queued)] = s.execute(
                select(Subscriber.status, Subscriber.unsubscribed_at).where(Subscriber.id == reader)
            ).all()
            assert status == "unsubscribed" and queued is not None

    receiver.release.set()
    deadline = time.monotonic() + WAIT
    while _statuses(producer, slow)[WebhookStatus.DELIVERED] < 2:
        if worker.poll() is not None or time.monotonic() > deadline:  # type: ignore[attr-defined]
            pytest.fail(f"webhooks not done: {_statuses(producer, slow)}\n" + worker.log.read_text()[-4000:])  # type: ignore[attr-defined]
        time.sleep(0.2)
    got = receiver.at("/slow")
    assert [(r.type, r.subscriber_id) for r in got] == [("subscribed", reader), ("unsubscribed", reader)]
    assert all(r.verified and r.status == 204 for r in got)
