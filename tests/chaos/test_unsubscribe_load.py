"""Load: one-click unsubscribes from 50 concurrent clients against the web app (``digest serve``:
uvicorn on loopback, two worker processes, PostgreSQL) while a real worker sends a digest. None may
be lost: every POST answers 200 and every one of those subscribers ends unsubscribed and suppressed.
Latency is measured and printed (p50, p99), never asserted. ``make chaos`` sends 2,000; ``make test`` 400.

The clients are threads on the standard library's ``http.client`` (one keep-alive connection each)
in a process of their own: the load generator shares the two cores with the server, the worker,
the SMTP sink and PostgreSQL, and a heavier client would measure itself."""

from __future__ import annotations

import http.client
import multiprocessing
import queue
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from digest.db import session_scope, utcnow
from digest.delivery.sink import SMTPSink
from digest.ledger.models import Issue
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason
from digest.subscribers.tokens import Purpose
from digest.wiring import build_services
from tests.chaos.conftest import chaos_settings, on_postgresql
from tests.chaos.harness import RedisServer, Worker, served_app, worker_env
from tests.factories import add_summaries, bulk_subscribers, days_before, summary_record

pytestmark = pytest.mark.integration

CLIENTS = 50
WEB_WORKERS = 2  # uvicorn processes: one per core
OTHERS = 1000  # subscribers who stay, so the send outlasts the unsubscribes


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(p / 100 * len(ordered) + 0.5) - 1)]


ONE_CLICK = (b"List-Unsubscribe=One-Click", {"Content-Type": "application/x-www-form-urlencoded"})


def _client(base_url: str, tokens: queue.Queue[str], latencies: list[float], failures: list[str]) -> None:
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    try:
        while True:
            try:
                token = tokens.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            try:
                connection.request("POST", f"/unsubscribe/{token}", *ONE_CLICK)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                connection.close()  # the next request reconnects
                continue
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                failures.append(f"{response.status}: {body[:200]!r}")
    finally:
        connection.close()


def fire(base_url: str, tokens: list[str], clients: int) -> tuple[list[float], list[str], float]:
    """POST every token from ``clients`` threads at once; (latencies, failures, seconds).

    Run in a process of its own: in the test process the clients would queue for the GIL behind
    the SMTP sink and the test's own threads, and measure that instead of the server.
    """
    work: queue.Queue[str] = queue.Queue()
    for token in tokens:
        work.put(token)
    latencies: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    threads = [threading.Thread(target=_client, args=(base_url, work, latencies, failures)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return latencies, failures, time.perf_counter() - started


def run_load(
    tmp_path: Path, database_url: str, redis_server: RedisServer, requests: int, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utcnow()
    leaving = [f"leaving{i:05d}@example.org" for i in range(requests)]
    staying = [f"staying{i:05d}@example.org" for i in range(OTHERS)]
    with SMTPSink() as smtp:
        settings = chaos_settings(tmp_path, database_url, redis_server.url, smtp.url, lease_seconds=60, chunk_size=100)
        from digest.dispatch import send_due

        web = build_services(settings)
        with session_scope(web.sessions) as s:
            add_summaries(s, summary_record(id="load-1", specialties=["cardiology"], published_at=days_before(now, 1)))
            people = [(e, "", ["cardiology"]) for e in staying + leaving]
            bulk_subscribers(s, people, created_at=now - timedelta(days=3))
            ids = dict(s.execute(select(Subscriber.email, Subscriber.id)).all())
        tokens = [web.tokens.make(Purpose.UNSUBSCRIBE, ids[email]) for email in leaving]
        env = worker_env(
            database_url=database_url,
            broker_url=redis_server.url,
            smtp_url=settings.smtp_url,
            var_dir=tmp_path / "var",
            lease_seconds=60,
            chunk_size=100,
        )
        worker = Worker("load", env, tmp_path)
        try:
            with served_app({**env, "DIGEST_WEB_WORKERS": str(WEB_WORKERS)}, tmp_path) as base_url:
                send_due(web)
                deadline = time.monotonic() + 60
                while not smtp.received:  # the send is under way
                    assert worker.proc.poll() is None and time.monotonic() < deadline, worker.tail()
                    time.sleep(0.05)
                sent_before = len(smtp.received)
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as load:
                    latencies, failures, elapsed = load.submit(fire, base_url, tokens, CLIENTS).result(timeout=600)
                sent_during = len(smtp.received) - sent_before
        finally:
            worker.stop()
        with session_scope(web.sessions) as s:
            unsubscribed = s.scalar(
                select(func.count())
                .select_from(Subscriber)
                .where(Subscriber.email.in_(leaving), Subscriber.status == SubscriberStatus.UNSUBSCRIBED)
            )
            suppressed = s.scalar(
                select(func.count())
                .select_from(Suppression)
                .where(Suppression.value.in_(leaving), Suppression.reason == SuppressionReason.UNSUBSCRIBED)
            )
            assert s.scalar(select(func.count()).select_from(Issue)) == 1
        web.close()

    with capsys.disabled():
        print(
            f"\nunsubscribes={len(latencies)} clients={CLIENTS} lost={requests - unsubscribed} "
            f"p50={statistics.median(latencies) * 1000:.0f}ms p99={percentile(latencies, 99) * 1000:.0f}ms "
            f"max={max(latencies) * 1000:.0f}ms rate={len(latencies) / elapsed:.0f}/s "
            f"messages_sent_meanwhile={sent_during}"
        )
    assert failures == []
    assert len(latencies) == requests
    assert unsubscribed == requests and suppressed == requests
    assert sent_during > 0  # the send really ran alongside


@on_postgresql
def test_unsubscribe_load_small(
    tmp_path: Path, chaos_db: str, own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run_load(tmp_path, chaos_db, own_redis, 400, capsys)


@pytest.mark.chaos
@on_postgresql
def test_unsubscribe_load_full(
    tmp_path: Path, chaos_db: str, own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run_load(tmp_path, chaos_db, own_redis, 2000, capsys)
