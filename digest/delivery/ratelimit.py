"""A global send rate (``DIGEST_SEND_RATE`` messages/second) shared by every worker, kept in Redis.

A token bucket whose state (tokens, last refill) lives in one Redis hash and changes only inside a
Lua script, so concurrent workers on any number of machines never race. The script *reserves*:
it always takes the tokens asked for, letting the balance go negative, and answers how long the
caller must wait before its reservation is due. One round trip per batch, no polling, and callers
are served in the order they asked. Time comes from Redis (``TIME``), not from the workers' clocks,
so skew between machines does not matter.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

# KEYS[1]: bucket hash. ARGV: rate (tokens/s), capacity (burst), count, now in microseconds or ""
# (use the server's TIME). Returns the wait in microseconds before the reservation is due.
_RESERVE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local now
if ARGV[4] ~= "" then
  now = tonumber(ARGV[4])
else
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local state = redis.call("HMGET", KEYS[1], "tokens", "ts")
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000000)
  ts = now
end
tokens = tokens - count
redis.call("HSET", KEYS[1], "tokens", tostring(tokens), "ts", tostring(ts))
-- Keep the key only while it matters: until the bucket would be full again.
local idle = math.ceil((capacity - tokens) / rate) + 60
redis.call("EXPIRE", KEYS[1], idle)
if tokens >= 0 then
  return 0
end
return math.ceil(-tokens * 1000000 / rate)
"""


class RedisTokenBucket:
    """``acquire(n)`` blocks until ``n`` more messages fit the global rate."""

    def __init__(
        self,
        client: redis.Redis,
        rate: float,
        *,
        burst: float | None = None,
        key: str = "digest:send-rate",
        sleep: Callable[[float], None] = time.sleep,
        now_us: Callable[[], int] | None = None,
    ):
        if rate <= 0:
            raise ValueError(f"DIGEST_SEND_RATE must be positive, not {rate}")
        self.client = client
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.key = key
        self.sleep = sleep
        self.now_us = now_us  # tests freeze time; production uses the Redis server's clock
        self._script = client.register_script(_RESERVE)

    @classmethod
    def from_url(cls, url: str, rate: float) -> RedisTokenBucket:
        return cls(redis.Redis.from_url(url), rate)

    def reserve(self, count: int) -> float:
        """Take ``count`` tokens; return the seconds to wait before they are due."""
        now = "" if self.now_us is None else str(self.now_us())
        wait_us = self._script(keys=[self.key], args=[repr(self.rate), repr(self.capacity), count, now])
        return int(wait_us) / 1_000_000

    def acquire(self, count: int) -> None:
        if count <= 0:
            return
        wait = self.reserve(count)
        if wait > 0:
            self.sleep(wait)
