"""``pg_terminate_backend`` on a real worker's database connections in the middle of a send (as an
operator, a failover or a pooler restart does): the chunks hand their unfinished rows back at once,
so every reader gets the digest long before the lease (600 s) would have queued them again.

A real ``celery worker`` (prefork, 2 processes) on Redis and PostgreSQL sends to a real SMTP server
on loopback. Its connections carry an ``application_name``, by which the test finds and kills them
twice during the send. No beat runs: nothing but the chunks' own hand-over can re-queue a row.
The message a killed transaction had in flight was accepted by the server and is sent again with
the same Message-ID (the documented window): each reader has exactly one Message-ID, and the extra
copies are at most one per killed transaction.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select, text

from digest.config import Settings
from digest.db import session_scope, utcnow
from digest.delivery.sink import Received, SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import Subscriber
from digest.wiring import build_services
from tests.conftest import PG_URL, require
from tests.factories import planned_issue
from tests.integration.test_celery_worker import _digest, worker  # noqa: F401 (the worker fixture)

pytestmark = pytest.mark.integration

APP = "digest-worker-under-test"
READERS = [(f"reader{i:03}@example.org", f"Reader {i}", ["cardiology"]) for i in range(200)]
KILL_AFTER = (30, 110)  # messages received before each kill
WAIT = 90.0  # far below the lease: recovery that waited for it fails here


class SlowSink:
    """Stores each message after a short pause, as a real server takes a few milliseconds: the send
    lasts long enough to be killed in the middle."""

    def __init__(self) -> None:
        self.sink: SMTPSink | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.01)
        assert self.sink is not None
        self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 2.0.0 accepted"


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    handler = SlowSink()
    with SMTPSink(handler=handler) as sink:
        handler.sink = sink
        yield sink


@pytest.fixture
def worker_env(redis_url: str, clean_db: str, smtp_sink: SMTPSink, tmp_path: Path) -> dict[str, str]:
    """The worker's settings: its connections named, small chunks (several in flight at each kill)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") or k.startswith("DIGEST_TEST_")}
    env.update(
        DIGEST_DATABASE_URL=f"{clean_db}{'&' if '?' in clean_db else '?'}application_name={APP}",
        DIGEST_BROKER_URL=redis_url,
        DIGEST_SMTP_URL=smtp_sink.url,
        DIGEST_TRANSPORT="smtp",
        DIGEST_VAR_DIR=str(tmp_path / "var"),
        DIGEST_SECRET_KEY="test-secret-key",
        DIGEST_BASE_URL="https://digest.example.org",
        DIGEST_FROM="Evidence Digest <digest@news.example.org>",
        DIGEST_CHUNK_SIZE="20",
        DIGEST_LEASE_SECONDS="600",
    )
    return env


def _kill(admin: Any) -> tuple[int, int]:
    """Terminate every backend of the worker; returns (killed, those inside a transaction)."""
    with admin.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT state, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :app AND datname = current_database()"
            ),
            {"app": APP},
        ).all()
        conn.commit()
    return len(rows), sum(1 for state, _ in rows if state in ("active", "idle in transaction"))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_killed_worker_connections_hand_the_rows_back_at_once_not_after_the_lease(
    worker_env: dict[str, str],
    worker: subprocess.Popen[bytes],  # noqa: F811 (the fixture imported above)
    smtp_sink: SMTPSink,
    redis_url: str,
    settings: Settings,
) -> None:
    require(PG_URL is not None, "PostgreSQL (DIGEST_TEST_DATABASE_URL)", "pg_terminate_backend is PostgreSQL's")
    producer = build_services(settings)  # plans the digest; the worker sends it
    planned_issue(producer, utcnow(), READERS)
    broker = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + WAIT

    assert "queued the planning task" in _digest(worker_env, "send")  # one dispatch tick, the only one
    killed = in_flight = 0
    for after in KILL_AFTER:
        while len(smtp_sink.received) < after:
            _alive(worker, deadline)
            time.sleep(0.005)
        k, f = _kill(producer.engine)
        killed, in_flight = killed + k, in_flight + f
    assert killed > 0 and in_flight > 0  # the kills hit the worker mid-send

    while True:
        _alive(worker, deadline)
        with session_scope(producer.sessions) as s:
            pending = s.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.PENDING))
        if not pending and not broker.llen("celery") and not broker.hlen("unacked"):
            break
        time.sleep(0.2)

    ids_of: dict[str, set[str]] = defaultdict(set)
    copies: Counter[str] = Counter()
    for received in smtp_sink.received:
        ids_of[received.rcpt_tos[0]].add(str(received.message["Message-ID"]))
        copies[received.rcpt_tos[0]] += 1
    assert sorted(copies) == sorted(email for email, _, _ in READERS)  # everyone, from the one dispatch
    assert all(len(ids) == 1 for ids in ids_of.values())  # one Message-ID per reader
    assert sum(copies.values()) - len(READERS) <= in_flight  # re-sent: only what a killed transaction held
    with session_scope(producer.sessions) as s:
        rows = s.execute(
            select(Subscriber.email, Delivery.status, Delivery.message_id).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        ).all()
        assert {status for _, status, _ in rows} == {DeliveryStatus.SENT}
        assert {email: {mid} for email, _, mid in rows} == dict(ids_of)
        assert s.scalar(select(Issue.status)) == IssueStatus.SENT
    producer.close()


def _alive(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Fail with the worker's log if it exited or the send outlasted ``WAIT``."""
    log = proc.log  # type: ignore[attr-defined]
    if proc.poll() is not None:
        pytest.fail(f"the worker exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
    if time.monotonic() > deadline:
        pytest.fail(f"not sent within {WAIT:.0f} s (the lease is 600 s):\n{log.read_text()[-4000:]}")
