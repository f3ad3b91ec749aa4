"""Load: one-click unsubscribes while 6 clients hammer the editor login form, beside the same
unsubscribes without the flood, in one run against ``digest serve`` (one uvicorn process, as the
default DIGEST_WEB_WORKERS, PostgreSQL, Redis for the login buckets).

Three phases, each POSTing distinct unsubscribe tokens from 4 clients:
- quiet: nothing else;
- flood, default limits: 6 clients POST wrong passwords to /editor/login as fast as they are
  answered (after 10 attempts per client and address in 300 s they get 429 + Retry-After);
- flood, no limits (DIGEST_LOGIN_ATTEMPTS_* raised to a million, a second server): every attempt
  runs argon2 (64 MiB, t=3), in the login thread, off the event loop.
p50/p99 of the unsubscribes per phase and the ratios to the quiet phase are printed (and copied
into docs/reliability.md), never asserted; every unsubscribe must answer 200."""

from __future__ import annotations

import http.client
import multiprocessing
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import select

from digest.db import session_scope, utcnow
from digest.delivery.sink import SMTPSink
from digest.editors.service import EditorIn, create_editor
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.wiring import build_services
from tests.chaos.conftest import chaos_settings, on_postgresql
from tests.chaos.harness import RedisServer, served_app, worker_env
from tests.chaos.test_unsubscribe_load import fire, percentile
from tests.factories import bulk_subscribers

pytestmark = pytest.mark.integration

PER_PHASE = 300
CLIENTS = 4
ATTACKERS = 6
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _attacker(base_url: str, stop: threading.Event, answers: dict[int, int]) -> None:
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    connection.request("GET", "/editor/login")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = (response.getheader("set-cookie") or "").split(";", 1)[0]
    token = CSRF.search(page)
    assert token, page[:300]
    body = urlencode({"email": "ed@example.org", "password": "not the password", "csrf_token": token.group(1)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    while not stop.is_set():
        connection.request("POST", "/editor/login", body, headers)
        reply = connection.getresponse()
        reply.read()
        answers[reply.status] = answers.get(reply.status, 0) + 1
    connection.close()


def flood_and_fire(
    base_url: str, tokens: list[str], flood: bool
) -> tuple[list[float], list[str], float, dict[int, int]]:
    """The unsubscribes (``fire``), with 6 login attackers running meanwhile when ``flood``."""
    stop = threading.Event()
    answers: dict[int, int] = {}
    attackers = [
        threading.Thread(target=_attacker, args=(base_url, stop, answers)) for _ in range(ATTACKERS if flood else 0)
    ]
    for t in attackers:
        t.start()
    if flood:
        time.sleep(3.0)  # the flood is under way before the first unsubscribe
    try:
        latencies, failures, elapsed = fire(base_url, tokens, CLIENTS)
    finally:
        stop.set()
        for t in attackers:
            t.join(120)
    return latencies, failures, elapsed, answers


def _phase(base_url: str, tokens: list[str], flood: bool) -> tuple[list[float], list[str], dict[int, int]]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as load:
        latencies, failures, _, answers = load.submit(flood_and_fire, base_url, tokens, flood).result(timeout=900)
    return latencies, failures, answers


@on_postgresql
def test_unsubscribes_while_the_login_form_is_flooded(
    tmp_path: Path, chaos_db: str, own_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utcnow()
    emails = [f"leaving{i:05d}@example.org" for i in range(3 * PER_PHASE)]
    with SMTPSink() as smtp:
        settings = chaos_settings(tmp_path, chaos_db, own_redis.url, smtp.url, lease_seconds=60, chunk_size=100)
        services = build_services(settings)
        with session_scope(services.sessions) as s:
            bulk_subscribers(s, [(e, "", ["cardiology"]) for e in emails], created_at=now - timedelta(days=3))
            ids = dict(s.execute(select(Subscriber.email, Subscriber.id)).all())
            create_editor(s, EditorIn("ed@example.org", "the right password, long"))
        tokens = [services.tokens.make(Purpose.UNSUBSCRIBE, ids[e]) for e in emails]
        services.close()
        env = worker_env(
            database_url=chaos_db,
            broker_url=own_redis.url,
            smtp_url=settings.smtp_url,
            var_dir=tmp_path / "var",
            lease_seconds=60,
            chunk_size=100,
        )
        results = {}
        with served_app(env, tmp_path) as base_url:
            results["quiet"] = _phase(base_url, tokens[:PER_PHASE], flood=False)
            results["flood, default limits"] = _phase(base_url, tokens[PER_PHASE : 2 * PER_PHASE], flood=True)
        unlimited = {
            **env,
            "DIGEST_LOGIN_ATTEMPTS_PER_CLIENT": "1000000",
            "DIGEST_LOGIN_ATTEMPTS_PER_ACCOUNT": "1000000",
        }
        with served_app(unlimited, tmp_path) as base_url:
            results["flood, no limits (argon2 each)"] = _phase(base_url, tokens[2 * PER_PHASE :], flood=True)

    quiet_p50 = sorted(results["quiet"][0])[len(results["quiet"][0]) // 2]
    quiet_p99 = percentile(results["quiet"][0], 99)
    with capsys.disabled():
        print(f"\none-click unsubscribes, {PER_PHASE} per phase from {CLIENTS} clients; {ATTACKERS} login attackers")
        for name, (latencies, _, answers) in results.items():
            p50, p99 = sorted(latencies)[len(latencies) // 2], percentile(latencies, 99)
            print(
                f"{name:32s} p50={p50 * 1000:6.1f}ms p99={p99 * 1000:6.1f}ms max={max(latencies) * 1000:6.1f}ms "
                f"p50 ratio={p50 / quiet_p50:4.2f} p99 ratio={p99 / quiet_p99:4.2f} login answers={answers}"
            )
    for name, (latencies, failures, _answers) in results.items():
        assert failures == [], name
        assert len(latencies) == PER_PHASE, name
    assert set(results["flood, default limits"][2]) <= {401, 429}
    assert set(results["flood, no limits (argon2 each)"][2]) == {401}  # every attempt was verified
