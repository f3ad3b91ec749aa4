"""The per-client sign-up counter: in Redis when configured (shared by every web process), else in the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import redis

from digest.db import session_scope
from digest.subscribers.signup import DatabaseClientLimiter, RedisClientLimiter
from digest.wiring import Services, make_client_limiter
from tests.conftest import on_postgresql_only

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)


def test_redis_counter_limits_per_client_and_window(redis_url: str) -> None:
    prefix = f"digest-test:{uuid.uuid4().hex}"
    limiter = RedisClientLimiter(redis_url, 3, WINDOW, prefix=prefix)
    other_process = RedisClientLimiter(redis_url, 3, WINDOW, prefix=prefix)
    try:
        results = [limiter.allow(None, "198.51.100.7", NOW) for _ in range(2)] + [
            other_process.allow(None, "198.51.100.7", NOW) for _ in range(2)
        ]
        assert results == [True, True, True, False]
        assert limiter.allow(None, "203.0.113.9", NOW)  # type: ignore[arg-type]  # another client has its own budget
        assert limiter.allow(None, "198.51.100.7", NOW + WINDOW)  # type: ignore[arg-type]  # next window
        ttl = redis.Redis.from_url(redis_url).ttl(f"{prefix}:198.51.100.7:{int(NOW.timestamp()) // 3600}")
        assert 0 < ttl <= 7200  # counters expire by themselves
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def test_wiring_picks_redis_when_configured(services: Services) -> None:
    assert isinstance(make_client_limiter(services.settings), DatabaseClientLimiter)
    configured = services.settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/4"})
    assert isinstance(make_client_limiter(configured), RedisClientLimiter)
    via_broker = services.settings.model_copy(update={"broker_url": "redis://127.0.0.1:6379/4"})
    assert isinstance(make_client_limiter(via_broker), RedisClientLimiter)


def test_database_counter_counts_recorded_attempts(services: Services) -> None:
    from digest.subscribers.models import SignupAttempt

    limiter = DatabaseClientLimiter(2, WINDOW)
    with session_scope(services.sessions) as s:
        s.add_all(
            SignupAttempt(email=f"{n}@example.org", client="192.0.2.1", created_at=NOW - timedelta(minutes=n))
            for n in range(2)
        )
        s.add(SignupAttempt(email="old@example.org", client="192.0.2.2", created_at=NOW - timedelta(hours=2)))
    with session_scope(services.sessions) as s:
        assert not limiter.allow(s, "192.0.2.1", NOW)
        assert limiter.allow(s, "192.0.2.2", NOW)
        assert limiter.allow(s, "192.0.2.1", NOW + WINDOW)


@on_postgresql_only
def test_the_daily_confirmation_cap_holds_under_30_concurrent_sign_ups(services: Services) -> None:
    """30 sign-ups of one address at once: exactly 3 are given a confirmation (the cap), not 4.
    PostgreSQL, where requests really run side by side (SQLite refuses a second writer outright)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from sqlalchemy import func, select

    from digest.subscribers.models import SignupAttempt
    from digest.subscribers.schema import SubscriberIn
    from digest.subscribers.signup import request_signup

    data = SubscriberIn(email="race@example.org", specialties=["cardiology"])
    start = Barrier(30)

    def sign_up(n: int) -> int | None:
        start.wait()
        with session_scope(services.sessions) as s:
            return request_signup(s, data, f"10.0.0.{n}", services.clock(), per_address_per_day=3)

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(sign_up, range(30)))
    assert sum(a is not None for a in answers) == 3
    with session_scope(services.sessions) as s:
        sent = s.scalar(select(func.count()).where(SignupAttempt.confirmation_sent.is_(True)))
    assert sent == 3
