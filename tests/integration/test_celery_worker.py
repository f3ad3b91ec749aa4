"""The send path under a real ``celery -A workers worker`` (prefork, 2 processes) with Redis as the
broker and the test database: 2,000 subscribers, exactly one message per eligible subscriber at a
real SMTP server (counted by Message-ID), the ledger agrees with what arrived, and neither a second
``digest send`` nor a redelivered chunk task adds anything.

Uses DIGEST_TEST_DATABASE_URL (PostgreSQL) and DIGEST_TEST_REDIS_URL (flushed); without
DIGEST_TEST_DATABASE_URL it also runs on a SQLite file (WAL, shared by the worker processes). Without
DIGEST_TEST_REDIS_URL there is no broker: a failure in CI, a skip on a developer machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import func, select

from digest.db import make_engine, make_session_factory, session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.service import import_summaries
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason
from tests.conftest import PG_URL
from tests.factories import bulk_subscribers, days_before, summary_record

pytestmark = pytest.mark.integration

SUBSCRIBERS = 2000
WAIT = 240.0  # seconds before giving up on the worker (a failure, with the worker's log)
COMBOS = [["cardiology"], ["oncology"], ["cardiology", "oncology"], ["dermatology"], ["cardiology", "dermatology"]]


@pytest.fixture
def worker_env(redis_url: str, clean_db: str, smtp_sink: SMTPSink, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") or k.startswith("DIGEST_TEST_")}
    env.update(
        DIGEST_DATABASE_URL=clean_db,
        DIGEST_BROKER_URL=redis_url,
        DIGEST_SMTP_URL=smtp_sink.url,
        DIGEST_TRANSPORT="smtp",
        DIGEST_VAR_DIR=str(tmp_path / "var"),
        DIGEST_SECRET_KEY="worker-test-secret",
        DIGEST_BASE_URL="https://digest.example.org",
        DIGEST_FROM="Evidence Digest <digest@news.example.org>",
    )
    return env


@pytest.fixture
def worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--loglevel=warning",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"issue3-test-{os.getpid()}@%h",
            ],
            env=worker_env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        proc.log = log  # type: ignore[attr-defined]
        yield proc
        proc.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task, then exit
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _database(url: str) -> None:
    """2,000 subscribers over five specialty combinations; 150 of them not eligible."""
    now = _now()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        import_summaries(
            s,
            list(
                enumerate(
                    [
                        summary_record(id="w-cardio", specialties=["cardiology"], published_at=days_before(now, 1)),
                        summary_record(id="w-onc", specialties=["oncology"], published_at=days_before(now, 1)),
                        summary_record(id="w-derm", specialties=["dermatology"], published_at=days_before(now, 2)),
                    ],
                    start=1,
                )
            ),
        )
        people = [
            (f"sub{i:04d}@example.org", f"Sub {i} O'Neil & Zoë", COMBOS[i % len(COMBOS)])
            for i in range(SUBSCRIBERS - 100)
        ]
        people += [(f"neuro{i:03d}@example.org", "", ["neurology"]) for i in range(100)]  # nothing new for them
        bulk_subscribers(s, people, created_at=now - _days(3))
        s.execute(
            Subscriber.__table__.update()
            .where(Subscriber.email.like("sub00%"))
            .values(status=SubscriberStatus.UNSUBSCRIBED)
        )
        for i in range(100, 125):  # hard-bounced earlier: suppressed
            s.add(Suppression(value=f"sub{i:04d}@example.org", reason=SuppressionReason.HARD_BOUNCE))
    engine.dispose()


def _now():
    from digest.db import utcnow

    return utcnow()


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


def _digest(env: dict[str, str], *args: str) -> str:
    exe = shutil.which("digest", path=str(Path(sys.executable).parent))
    assert exe, "the digest console script is not installed in this environment"
    done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _wait_idle(broker: redis.Redis, proc: subprocess.Popen[bytes], until: float) -> None:
    """Until the queue is empty and no task is unacknowledged (late acks: acked when done)."""
    quiet = 0
    while quiet < 3:
        if proc.poll() is not None:
            tail = proc.log.read_text()[-4000:]  # type: ignore[attr-defined]
            pytest.fail(f"the worker exited with {proc.returncode}:\n{tail}")
        if time.monotonic() > until:
            tail = proc.log.read_text()[-4000:]  # type: ignore[attr-defined]
            pytest.fail(f"the worker did not finish in {WAIT:.0f}s:\n{tail}")
        busy = broker.llen("celery") or broker.hlen("unacked")
        quiet = 0 if busy else quiet + 1
        time.sleep(0.3)


@pytest.mark.parametrize("database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True)
def test_two_thousand_subscribers_through_a_real_worker(
    worker_env: dict[str, str], worker: subprocess.Popen[bytes], smtp_sink: SMTPSink, redis_url: str
) -> None:
    url = worker_env["DIGEST_DATABASE_URL"]
    _database(url)
    broker = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + WAIT

    out = _digest(worker_env, "send")
    assert "queued the planning task" in out
    _wait_idle(broker, worker, deadline)

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        issue = s.scalar(select(Issue))
        assert issue is not None and issue.status == IssueStatus.SENT
        rows = s.execute(
            select(Subscriber.email, Delivery.status, Delivery.message_id, Delivery.id).join(
                Delivery, Delivery.subscriber_id == Subscriber.id
            )
        ).all()
        eligible = set(
            s.scalars(
                select(Subscriber.email).where(
                    Subscriber.status == SubscriberStatus.ACTIVE, ~Subscriber.email.like("neuro%")
                )
            )
        )
        assert issue.dispatched_through == max(r.id for r in rows)
    eligible -= {f"sub{i:04d}@example.org" for i in range(100, 125)}
    assert len(eligible) == SUBSCRIBERS - 100 - 100 - 25

    arrived = Counter(str(m["Message-ID"]) for m in smtp_sink.messages)
    assert len(arrived) == len(eligible) and set(arrived.values()) == {1}  # exactly one each
    assert {r.rcpt_tos[0] for r in smtp_sink.received} == eligible
    sent = {r.message_id for r in rows if r.status == DeliveryStatus.SENT}
    assert sent == set(arrived)  # the ledger agrees with what arrived
    planned = {r.email for r in rows}
    assert planned == eligible  # unsubscribed, suppressed and nothing-new subscribers got no ledger row

    # Again: a second `digest send` and a redelivered chunk task add nothing.
    first_chunk = sorted(r.id for r in rows)[:250]
    Celery(broker=redis_url).send_task("workers.tasks.deliver_chunk", args=[first_chunk])
    _digest(worker_env, "send")
    _wait_idle(broker, worker, deadline + 60)

    assert Counter(str(m["Message-ID"]) for m in smtp_sink.messages) == arrived
    with session_scope(sessions) as s:
        assert s.scalar(select(func.count()).select_from(Issue)) == 1
        assert set(s.scalars(select(Delivery.message_id).where(Delivery.status == DeliveryStatus.SENT))) == sent
    engine.dispose()
