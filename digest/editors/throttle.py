"""Login throttling: token buckets per client address and per account, never a lockout.

Each login attempt takes a token from the client's bucket and from the bucket of the address typed
(whether or not an account has it: the answer, 429 with ``Retry-After``, is the same, so it tells
nobody which addresses have accounts). A bucket refills continuously, so after the wait the right
password works again; nothing has to be unlocked by hand. The buckets live in Redis when there is
one (every web process shares them), else in the process (a bounded table, oldest keys forgotten).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from digest.lru import LRUCache

# KEYS[1]: bucket hash. ARGV: rate (tokens/s), capacity. Takes one token if there is one and
# answers 0, else takes nothing and answers the microseconds until a token is back.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call("HMGET", KEYS[1], "tokens", "ts")
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate / 1000000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call("HSET", KEYS[1], "tokens", tostring(tokens), "ts", tostring(now))
redis.call("EXPIRE", KEYS[1], math.ceil(capacity / rate) + 60)
return wait
"""


@dataclass(frozen=True)
class Limit:
    """``attempts`` per ``seconds``, as a bucket of ``attempts`` tokens refilled evenly."""

    attempts: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.attempts / self.seconds


class Buckets(Protocol):
    def take(self, key: str, limit: Limit) -> float:
        """Take one token; 0.0 when there was one, else the seconds until there is one."""
        ...


class MemoryBuckets:
    """Buckets in this process (one web process, or tests), at most ``size`` keys."""

    def __init__(self, size: int = 50_000, clock: Callable[[], float] = time.monotonic):
        self._state: LRUCache[str, tuple[float, float]] = LRUCache(size)
        self._lock = threading.Lock()
        self._clock = clock

    def take(self, key: str, limit: Limit) -> float:
        with self._lock:
            now = self._clock()
            tokens, ts = self._state.get(key) or (float(limit.attempts), now)
            tokens = min(float(limit.attempts), tokens + (now - ts) * limit.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / limit.rate
            self._state[key] = (tokens, now)  # the least recently seen key goes past ``size``
            return wait


class RedisBuckets:
    """Buckets shared by every web process, in Redis (time from the Redis server)."""

    def __init__(self, url: str, prefix: str = "digest:login"):
        import redis

        self._client = redis.Redis.from_url(url)
        self._script = self._client.register_script(_TAKE)
        self._prefix = prefix

    def take(self, key: str, limit: Limit) -> float:
        wait_us = self._script(keys=[f"{self._prefix}:{key}"], args=[repr(limit.rate), limit.attempts])
        return int(wait_us) / 1_000_000


class LoginThrottle:
    """The two buckets a login attempt draws from."""

    def __init__(self, buckets: Buckets, per_client: Limit, per_account: Limit):
        self.buckets, self.per_client, self.per_account = buckets, per_client, per_account

    def wait(self, client: str, account: str) -> float:
        """Seconds before this client may try this account again (0: go ahead). A client already
        over its limit takes nothing from the account's bucket."""
        wait = self.buckets.take(f"client:{client}", self.per_client)
        if wait > 0:
            return wait
        return self.buckets.take(f"account:{account.strip().lower()}", self.per_account)
