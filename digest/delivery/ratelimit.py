"""The global send rate shared by every worker, kept in Redis: a token bucket whose rate adapts.

A token bucket whose state lives in one Redis hash and changes only inside Lua scripts, so
concurrent workers on any number of machines never race. The reserve script always takes the
tokens asked for, letting the balance go negative, and answers how long the caller must wait
before its reservation is due: one round trip per batch, no polling, callers served in the order
they asked. Time comes from Redis (``TIME``), not from the workers' clocks, so skew between
machines does not matter.

The rate adapts to what the provider takes (AIMD, as TCP does): when the transport throttles
(4.7.x, 421, HTTP 429), ``slow_down`` halves the effective rate for every worker at once, down to
a floor (``DIGEST_SEND_RATE_FLOOR``); every accepted message then raises it by ``1/rate``, i.e.
by one message/s per second of sending, back up to ``DIGEST_SEND_RATE``. Without a configured
rate sending is unlimited, but the bucket still counts the messages of the last seconds, so the
first throttle sets a rate of half the throughput observed; once recovered to that throughput,
sending is unlimited again. Throttles reported within the wait they caused (the other workers
meeting the same refusal) cut the rate once, not once per worker.

Why Redis rather than the transport circuit's row in the database: every batch already makes one
round trip here, so each reservation sees the rate the last throttle set (and applies the
successes since the previous one) at no extra cost, and the cut is atomic with the bucket. The
adaptive state outlives idle periods (a day): a send that starts tomorrow does not hammer a
provider that throttled today. When Redis does not answer, a configured rate stops the send (the
bucket is a promise to the provider); without one, sending goes on unlimited, as before a throttle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

STATE_SECONDS = 86_400  # how long an adapted rate is kept while nothing is sent
OBSERVE_SECONDS = 10  # the window of throughput counted for the first throttle without a rate

# Shared by the scripts. KEYS[1]: bucket hash. ARGV[1]: the configured rate ("" for none); ARGV[2]:
# now in microseconds or "" (the server's TIME). Defines ``now``, ``ceiling``, ``state`` (the hash's
# fields) and ``rate`` (the effective rate: the adapted one, else the ceiling, else nil: unlimited).
_PRELUDE = """
local ceiling = tonumber(ARGV[1])
local now
if ARGV[2] ~= "" then
  now = tonumber(ARGV[2])
else
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local state = {}
local flat = redis.call("HGETALL", KEYS[1])
for i = 1, #flat, 2 do state[flat[i]] = tonumber(flat[i + 1]) end
local rate = state.rate or ceiling
if state.rate ~= nil and ceiling ~= nil and state.rate > ceiling then rate = ceiling end
"""

# ARGV[3]: messages to reserve; ARGV[4]: messages accepted since this caller's last reservation;
# ARGV[5]: burst ("" for one second's worth). Returns the wait in microseconds.
_RESERVE = (
    _PRELUDE
    + f"""
local count = tonumber(ARGV[3])
local credit = tonumber(ARGV[4])
if state.rate ~= nil and credit > 0 then
  -- additive increase: +1/rate per accepted message, i.e. +1 message/s per second of sending
  local raised = math.sqrt(state.rate * state.rate + 2 * credit)
  local top = ceiling or state.peak
  if top == nil or raised >= top then
    redis.call("HDEL", KEYS[1], "rate", "peak", "cut")
    rate = ceiling
  else
    redis.call("HSET", KEYS[1], "rate", tostring(raised))
    rate = raised
  end
end
-- the throughput of the last {OBSERVE_SECONDS} s or so, for a first throttle without a rate
local window = {OBSERVE_SECONDS} * 1000000
if state.w0 == nil or now - state.w0 >= 2 * window then
  redis.call("HSET", KEYS[1], "w0", tostring(now), "n0", tostring(count), "n1", "0")
elseif now - state.w0 >= window then
  redis.call("HSET", KEYS[1], "w0", tostring(now), "n0", tostring(count),
             "w1", tostring(state.w0), "n1", tostring(state.n0))
else
  redis.call("HINCRBY", KEYS[1], "n0", count)
end
local keep = {STATE_SECONDS}
if rate == nil then
  if state.tokens ~= nil then redis.call("HDEL", KEYS[1], "tokens", "ts") end
  if state.rate == nil then keep = 3 * {OBSERVE_SECONDS} end
  redis.call("EXPIRE", KEYS[1], keep)
  return 0
end
local capacity = tonumber(ARGV[5]) or math.max(1, rate)
local tokens = state.tokens
local ts = state.ts
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
-- Keep the key while it matters: until the bucket would be full again, or a day for an adapted rate.
if state.rate == nil then keep = math.ceil((capacity - tokens) / rate) + 60 end
redis.call("EXPIRE", KEYS[1], keep)
if tokens >= 0 then
  return 0
end
return math.ceil(-tokens * 1000000 / rate)
"""
)

# ARGV[3]: the floor; ARGV[4]: microseconds after a cut during which throttles belong to it.
# Returns {1 if this call cut the rate else 0, the effective rate as a string}.
_SLOW_DOWN = (
    _PRELUDE
    + f"""
local floor = tonumber(ARGV[3])
local quiet = tonumber(ARGV[4])
if state.cut ~= nil and now - state.cut < quiet and now >= state.cut then
  return {{0, tostring(rate or "")}}
end
if rate == nil then
  -- no rate yet: start from the throughput observed (at least over one second)
  local n0, n1 = state.n0 or 0, state.n1 or 0
  local since = state.w0 or now
  if n1 > 0 and state.w1 ~= nil then since = state.w1 end
  rate = (n0 + n1) * 1000000 / math.max(1000000, now - since)
  redis.call("HSET", KEYS[1], "peak", tostring(math.max(rate, floor)))
end
local cut = math.max(floor, rate / 2)
if ceiling ~= nil then cut = math.min(cut, ceiling) end
redis.call("HSET", KEYS[1], "rate", tostring(cut), "cut", tostring(now))
if state.tokens ~= nil and state.tokens > math.max(1, cut) then
  redis.call("HSET", KEYS[1], "tokens", tostring(math.max(1, cut)))
end
redis.call("EXPIRE", KEYS[1], {STATE_SECONDS})
return {{1, tostring(cut)}}
"""
)


class AdaptiveRate:
    """``acquire(n)`` blocks until ``n`` more messages fit the global rate; ``succeeded`` and
    ``slow_down`` adapt that rate for every worker. ``ceiling``: ``DIGEST_SEND_RATE`` (None: unlimited
    until a throttle)."""

    def __init__(
        self,
        client: redis.Redis,
        ceiling: float | None,
        *,
        floor: float = 1.0,
        burst: float | None = None,
        key: str = "digest:send-rate",
        sleep: Callable[[float], None] = time.sleep,
        now_us: Callable[[], int] | None = None,
    ):
        if ceiling is not None and ceiling <= 0:
            raise ValueError(f"DIGEST_SEND_RATE must be positive, not {ceiling}")
        if floor <= 0:
            raise ValueError(f"DIGEST_SEND_RATE_FLOOR must be positive, not {floor}")
        self.client = client
        self.ceiling = ceiling
        self.floor = floor if ceiling is None else min(floor, ceiling)
        self.burst = burst
        self.key = key
        self.sleep = sleep
        self.now_us = now_us  # tests freeze time; production uses the Redis server's clock
        self._credit = 0  # messages accepted since this process's last reservation
        self._reserve = client.register_script(_RESERVE)
        self._slow_down = client.register_script(_SLOW_DOWN)

    @classmethod
    def from_url(cls, url: str, ceiling: float | None, *, floor: float = 1.0) -> AdaptiveRate:
        return cls(redis.Redis.from_url(url), ceiling, floor=floor)

    def _args(self) -> list[str]:
        return ["" if self.ceiling is None else repr(self.ceiling), "" if self.now_us is None else str(self.now_us())]

    def reserve(self, count: int) -> float:
        """Take ``count`` tokens; return the seconds to wait before they are due."""
        credit, self._credit = self._credit, 0
        burst = "" if self.burst is None else repr(self.burst)
        wait_us = self._reserve(keys=[self.key], args=[*self._args(), count, credit, burst])
        return int(wait_us) / 1_000_000

    def acquire(self, count: int) -> None:
        if count <= 0:
            return
        try:
            wait = self.reserve(count)
        except redis.RedisError as exc:
            if self.ceiling is not None:
                raise  # DIGEST_SEND_RATE is a promise to the provider: no sending without the bucket
            log.warning("send rate not available (%s); sending without one, as configured", exc)
            return
        if wait > 0:
            self.sleep(wait)

    def succeeded(self, count: int) -> None:
        """``count`` messages were accepted: raise the rate (with the next reservation, no round trip)."""
        self._credit += count

    def slow_down(self, transport: str, quiet: float) -> float | None:
        """The transport throttled: halve the rate for every worker, unless a throttle less than
        ``quiet`` seconds ago (the wait every worker now observes) already did. Returns the rate."""
        self._credit = 0
        args = [*self._args(), repr(self.floor), str(int(quiet * 1_000_000))]
        try:
            cut, rate = self._slow_down(keys=[self.key], args=args)
        except redis.RedisError as exc:
            log.warning("send rate not available (%s): the throttle only holds every worker back", exc)
            return None
        value = float(rate) if rate else None
        if int(cut) and value is not None:
            log.warning(
                "transport %s is throttling: the send rate of every worker is cut to %.2f messages/s"
                " (floor %.2f); it recovers by one message/s per second of sending, up to %s",
                transport,
                value,
                self.floor,
                "unlimited" if self.ceiling is None else f"{self.ceiling:g}/s (DIGEST_SEND_RATE)",
            )
        return value

    def current(self) -> float | None:
        """The effective rate in messages/s, None while unlimited (what ``/metrics`` shows)."""
        adapted = self.client.hget(self.key, "rate")
        if adapted is not None:
            return float(adapted)
        return self.ceiling
