"""/metrics counts sends: in-process, and from a real `digest worker` process through the shared
multiprocess directory, as in production where workers send and the web process is scraped."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import requests
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digest import dispatch
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink, free_port
from digest.queue import BrokerQueue
from digest.web.ops import router
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record
from tests.unit.test_observability import sample

REJECTED = "gone@example.org"


class _RejectingHandler:
    """Accepts every message except for one address, which gets a 550 at RCPT (a hard bounce)."""

    def __init__(self, sink: SMTPSink):
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == REJECTED:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        from digest.delivery.sink import Received

        self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 2.0.0 Accepted"


def _scrape(services: Services) -> str:
    app = FastAPI()
    app.include_router(router)
    app.state.services = services
    response = TestClient(app, client=("127.0.0.1", 50000)).get("/metrics")
    assert response.status_code == 200
    return response.text


def _seed(services: Services, clock: Clock, *emails: str) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(specialties=["cardiology"], published_at=days_before(clock(), 1)))
        for email in emails:
            add_subscriber(s, email, ["cardiology"], created_at=clock() - timedelta(days=3))


def test_metrics_count_sends_and_bounces(settings: Settings, clock: Clock) -> None:
    from digest.wiring import build_services

    sink = SMTPSink()
    sink.controller.handler = _RejectingHandler(sink)
    with sink:
        svc = build_services(settings.model_copy(update={"smtp_url": sink.url}), clock=clock)
        try:
            before = _scrape(svc)
            _seed(svc, clock, "a@example.org", "b@example.org", REJECTED)
            run = dispatch.send_due(svc, clock())
            assert run.plan.deliveries == 3 and len(sink.received) == 2
            after = _scrape(svc)
        finally:
            svc.close()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("digest_messages_sent_total", transport="smtp") == 2
    assert delta("digest_messages_failed_total", transport="smtp", kind="bounce") == 1
    assert delta("digest_send_seconds_count", transport="smtp") == 3  # SMTP sends one message per call


@pytest.fixture
def broker_url(redis_url: str) -> Iterator[str]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # our own db number: no queued tasks from earlier runs
    yield redis_url
    client.flushdb()
    client.close()


@dataclass(frozen=True)
class Worker:
    process: subprocess.Popen[bytes]
    metrics_url: str
    log: Path


@pytest.fixture
def worker(settings: Settings, broker_url: str, tmp_path: Path) -> Iterator[Worker]:
    """`digest worker` in its own process (prefork, one child), with the test's database and SMTP server."""
    env = dict(os.environ)
    env.update(
        DIGEST_VAR_DIR=str(settings.var_dir),
        DIGEST_DATABASE_URL=settings.database_url,
        DIGEST_BROKER_URL=broker_url,
        DIGEST_SMTP_URL=settings.smtp_url,
        DIGEST_SECRET_KEY=settings.secret_key,
        DIGEST_BASE_URL=settings.base_url,
        DIGEST_FROM=settings.from_,
        DIGEST_LOG_LEVEL="WARNING",
    )
    digest = Path(sys.executable).with_name("digest")
    log = tmp_path / "worker.log"
    out = log.open("wb")
    port = free_port()
    command = [str(digest), "worker", "--concurrency", "1", "--metrics-port", str(port)]
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    yield Worker(proc, f"http://127.0.0.1:{port}/metrics", log)
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    out.close()


def test_metrics_count_what_a_worker_process_sent(
    services: Services, settings: Settings, smtp_sink: SMTPSink, clock: Clock, broker_url: str, worker: Worker
) -> None:
    _seed(services, clock, "one@example.org", "two@example.org")
    before = _scrape(services)
    queued = settings.model_copy(update={"broker_url": broker_url})
    producer = BrokerQueue(queued)
    try:  # plans here, queues the chunk in Redis for the worker
        run = dispatch.send_due(dataclasses.replace(services, settings=queued, queue=producer), clock())
    finally:
        producer.close()
    assert run.chunks == 1
    deadline = time.monotonic() + 60
    while len(smtp_sink.received) < 2:
        assert worker.process.poll() is None, worker.log.read_text()
        assert time.monotonic() < deadline, "the worker sent nothing within 60 s:\n" + worker.log.read_text()
        time.sleep(0.1)

    with_broker = services.settings.model_copy(update={"broker_url": broker_url})
    services.settings = with_broker  # the web process of this host: same metrics directory, same broker
    after = _scrape(services)
    assert (
        sample(after, "digest_messages_sent_total", transport="smtp")
        - sample(before, "digest_messages_sent_total", transport="smtp")
        == 2
    )
    assert sample(after, "digest_queue_depth", queue="celery") == 0

    # A worker-only host exports the same figures itself (`digest worker --metrics-port`).
    exported = requests.get(worker.metrics_url, timeout=10).text
    assert sample(exported, "digest_messages_sent_total", transport="smtp") == sample(
        after, "digest_messages_sent_total", transport="smtp"
    )
