"""The global send rate: a token bucket in Redis, atomic across processes, whose rate every worker's
throttle cuts (halved, down to a floor) and every accepted message raises again."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import redis

from digest.config import Settings
from digest.delivery.ratelimit import AdaptiveRate
from digest.delivery.service import Unlimited
from digest.wiring import ConfigError, make_rate_limiter

FROZEN_US = 1_800_000_000_000_000  # every caller asks at the same instant


def _reserve_many(url: str, count: int, out: multiprocessing.Queue) -> None:
    bucket = AdaptiveRate(redis.Redis.from_url(url), 10, now_us=lambda: FROZEN_US)
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
    bucket = AdaptiveRate(redis.Redis.from_url(redis_url), 2, burst=2, sleep=slept.append, now_us=lambda: now[0])

    bucket.acquire(2)
    bucket.acquire(3)  # 3 more at 2/s: due in 1.5 s
    assert slept == [1.5]
    now[0] += 10_000_000  # ten seconds later the bucket is full again (capped at the burst)
    bucket.acquire(2)
    assert slept == [1.5]
    assert bucket.reserve(1) == 0.5


def test_wiring_shares_the_rate_through_redis_whenever_there_is_one(tmp_path: Path, redis_url: str) -> None:
    base = {"var_dir": tmp_path, "secret_key": "k", "database_url": f"sqlite:///{tmp_path / 'd.db'}"}
    assert isinstance(make_rate_limiter(Settings(**base)), Unlimited)
    assert isinstance(make_rate_limiter(Settings(**base, send_rate=50, broker_url=redis_url)), AdaptiveRate)
    assert isinstance(make_rate_limiter(Settings(**base, send_rate=50, redis_url=redis_url)), AdaptiveRate)
    unset = make_rate_limiter(Settings(**base, redis_url=redis_url))  # unlimited until the transport throttles
    assert isinstance(unset, AdaptiveRate) and unset.current() is None
    with pytest.raises(ConfigError, match="DIGEST_REDIS_URL"):
        make_rate_limiter(Settings(**base, send_rate=50))


class Worker:
    """One worker's handle on the shared rate, on a simulated clock shared by every worker: waiting
    advances the clock."""

    def __init__(self, url: str, clock: list[int], ceiling: float | None, floor: float = 1.0):
        self.clock = clock
        self.rate = AdaptiveRate(
            redis.Redis.from_url(url), ceiling, floor=floor, sleep=self._sleep, now_us=lambda: clock[0]
        )

    def _sleep(self, seconds: float) -> None:
        self.clock[0] += int(seconds * 1_000_000)

    def send(self, count: int) -> None:
        """``count`` messages one by one, each accepted."""
        for _ in range(count):
            self.rate.acquire(1)
            self.rate.succeeded(1)

    def messages_per_second(self, count: int) -> float:
        """The pace ``count`` more messages are sent at (after the bucket's burst)."""
        self.send(int(self.rate.current() or 0) + 1)  # spend the burst (one second's worth)
        start = self.clock[0]
        self.send(count)
        return count * 1_000_000 / (self.clock[0] - start)


def test_a_throttle_halves_the_rate_another_worker_sees_once_per_wait(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [FROZEN_US]
    a, b = Worker(redis_url, clock, 20), Worker(redis_url, clock, 20)
    assert b.rate.current() == 20

    with caplog.at_level("WARNING", logger="digest.delivery.ratelimit"):
        assert a.rate.slow_down("smtp", quiet=30) == 10
        assert b.rate.slow_down("smtp", quiet=30) == 10  # the same throttle, met by the other worker
    assert [r.getMessage() for r in caplog.records] == [
        "transport smtp is throttling: the send rate of every worker is cut to 10.00 messages/s (floor 1.00);"
        " it recovers by one message/s per second of sending, up to 20/s (DIGEST_SEND_RATE)"
    ]
    assert b.rate.current() == 10
    assert b.rate.reserve(10) == 0  # one second's burst at the new rate
    assert b.rate.reserve(1) == 0.1  # then one message every 1/10 s, not 1/20 s

    clock[0] += 31_000_000  # the wait is over and the server throttles again: halved again
    assert b.rate.slow_down("smtp", quiet=30) == 5
    assert a.rate.current() == 5


def test_accepted_messages_raise_the_rate_back_to_the_configured_one(redis_url: str) -> None:
    clock = [FROZEN_US]
    a, b = Worker(redis_url, clock, 20), Worker(redis_url, clock, 20)
    a.rate.slow_down("smtp", quiet=30)
    a.rate.slow_down("smtp", quiet=0)  # 5/s

    slow = b.messages_per_second(10)
    assert 5 <= slow < 8  # +1/rate per accepted message: about +1 message/s per second of sending
    assert b.messages_per_second(20) > slow
    b.send(200)
    assert a.rate.current() == 20  # back to DIGEST_SEND_RATE, never above it
    assert b.messages_per_second(100) == pytest.approx(20, rel=1e-3)


def test_the_floor_holds(redis_url: str) -> None:
    clock = [FROZEN_US]
    a = Worker(redis_url, clock, 8, floor=3)
    assert [a.rate.slow_down("smtp", quiet=0) for _ in range(4)] == [4, 3, 3, 3]
    assert a.rate.reserve(3) == 0 and a.rate.reserve(1) == pytest.approx(1 / 3, abs=1e-6)  # a burst of 3, then 3/s
    assert Worker(redis_url, clock, 2, floor=3).rate.slow_down("smtp", quiet=0) == 2  # never above the ceiling


def test_without_a_configured_rate_the_first_throttle_sets_one_from_the_throughput(redis_url: str) -> None:
    clock = [FROZEN_US]
    a, b = Worker(redis_url, clock, None), Worker(redis_url, clock, None)
    for _ in range(40):  # 40 messages a second, for four seconds: unlimited, nobody waits
        a.send(5)
        b.send(5)
        clock[0] += 100_000
    assert clock[0] == FROZEN_US + 4_000_000 and a.rate.current() is None

    assert b.rate.slow_down("smtp", quiet=30) == pytest.approx(50, rel=0.05)  # half the 100/s observed
    assert a.messages_per_second(100) == pytest.approx(50, rel=0.05)
    a.send(10_000)  # recovered to the throughput where the provider throttled: unlimited again
    assert b.rate.current() is None
    start = clock[0]
    b.send(1000)
    assert clock[0] == start


def test_without_its_redis_an_unlimited_rate_sends_and_a_configured_one_does_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)  # nothing listens on port 1
    unlimited = AdaptiveRate(gone, None)
    with caplog.at_level("WARNING", logger="digest.delivery.ratelimit"):
        unlimited.acquire(1)
        assert unlimited.slow_down("smtp", quiet=30) is None
    assert "sending without one" in caplog.text and "only holds every worker back" in caplog.text
    with pytest.raises(redis.ConnectionError):
        AdaptiveRate(gone, 10).acquire(1)
