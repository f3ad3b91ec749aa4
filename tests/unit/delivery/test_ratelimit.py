"""The global send rate: a token bucket in Redis, atomic across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import redis

from digest.config import Settings
from digest.delivery.ratelimit import RedisTokenBucket
from digest.delivery.service import Unlimited
from digest.wiring import ConfigError, make_rate_limiter

FROZEN_US = 1_800_000_000_000_000  # every caller asks at the same instant


def _reserve_many(url: str, count: int, out: multiprocessing.Queue) -> None:
    bucket = RedisTokenBucket(redis.Redis.from_url(url), rate=10, now_us=lambda: FROZEN_US)
    out.put([bucket.reserve(1) for _ in range(count)])


def test_processes_share_one_bucket_and_never_get_the_same_slot(redis_url: str) -> None:
    # spawn, not fork: forking a process whose other threads (a browser driver, an SMTP server) hold
    # locks can leave the child stuck on them.
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_reserve_many, args=(redis_url, 25, out)) for _ in range(4)]
    for w in workers:
        w.start()
    waits = sorted(w for _ in workers for w in out.get(timeout=60))
    for w in workers:
        w.join(timeout=30)

    # 10 tokens of burst go at once; then one message every 1/10 s, each slot handed out exactly once.
    assert waits == [0.0] * 10 + [round(0.1 * k, 6) for k in range(1, 91)]


def test_acquire_waits_for_its_reservation_and_tokens_refill(redis_url: str) -> None:
    now = [FROZEN_US]
    slept: list[float] = []
    bucket = RedisTokenBucket(
        redis.Redis.from_url(redis_url), rate=2, burst=2, sleep=slept.append, now_us=lambda: now[0]
    )

    bucket.acquire(2)
    bucket.acquire(3)  # 3 more at 2/s: due in 1.5 s
    assert slept == [1.5]
    now[0] += 10_000_000  # ten seconds later the bucket is full again (capped at the burst)
    bucket.acquire(2)
    assert slept == [1.5]
    assert bucket.reserve(1) == 0.5


def test_wiring_uses_redis_only_when_a_rate_is_set(tmp_path: Path, redis_url: str) -> None:
    base = {"var_dir": tmp_path, "secret_key": "k", "database_url": f"sqlite:///{tmp_path / 'd.db'}"}
    assert isinstance(make_rate_limiter(Settings(**base)), Unlimited)
    assert isinstance(make_rate_limiter(Settings(**base, send_rate=50, broker_url=redis_url)), RedisTokenBucket)
    assert isinstance(make_rate_limiter(Settings(**base, send_rate=50, redis_url=redis_url)), RedisTokenBucket)
    with pytest.raises(ConfigError, match="DIGEST_REDIS_URL"):
        make_rate_limiter(Settings(**base, send_rate=50))
