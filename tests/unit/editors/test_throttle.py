"""Login token buckets: in the process and in Redis, the same behaviour."""

from __future__ import annotations

import uuid

import pytest

from digest.editors.throttle import Limit, LoginThrottle, MemoryBuckets, RedisBuckets


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_buckets_refill_evenly_and_forget_the_oldest_keys() -> None:
    time = FakeTime()
    buckets = MemoryBuckets(size=3, clock=time)
    limit = Limit(3, 60)
    assert [buckets.take("a", limit) for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a", limit) == pytest.approx(20)  # one token is back after 60/3 s
    time.now += 20
    assert buckets.take("a", limit) == 0
    for key in ("b", "c", "d"):
        buckets.take(key, limit)
    assert buckets.take("a", limit) == 0  # "a" was forgotten: a full bucket again


def test_the_client_bucket_is_checked_first_and_spares_the_account() -> None:
    time = FakeTime()
    buckets = MemoryBuckets(clock=time)
    throttle = LoginThrottle(buckets, Limit(2, 60), Limit(3, 60))
    assert throttle.wait("10.0.0.1", "ed@example.org") == 0
    assert throttle.wait("10.0.0.1", "ED@example.org ") == 0
    assert throttle.wait("10.0.0.1", "ed@example.org") > 0  # the client is over its limit
    # The account's bucket lost two tokens, not three: another client still gets one try.
    assert throttle.wait("10.0.0.2", "ed@example.org") == 0
    assert throttle.wait("10.0.0.3", "ed@example.org") > 0
    # The same answer for an address without an account: the buckets do not know accounts.
    assert throttle.wait("10.0.0.4", "nobody@example.org") == 0


def test_redis_buckets(redis_url: str) -> None:
    buckets = RedisBuckets(redis_url, prefix=f"test:{uuid.uuid4().hex}")
    limit = Limit(2, 60)
    assert buckets.take("k", limit) == 0 and buckets.take("k", limit) == 0
    wait = buckets.take("k", limit)
    assert 29 < wait <= 30
    assert buckets.take("other", limit) == 0
