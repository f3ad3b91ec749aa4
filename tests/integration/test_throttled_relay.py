"""A relay that takes K messages per second and throttles the rest (450 4.7.1, or 421), against two
workers sharing the send rate in Redis: the rate comes down to what the relay takes, every reader
gets the digest exactly once, no row fails and no attempt is spent on a throttle.

Time is simulated: the relay's window, the rate bucket and the circuit's wait all read the test
clock, and a worker waiting for the bucket or for a throttle advances it, as the broker's countdown
would. The hand-over of throttled rows is the one ``workers.tasks.deliver_chunk`` makes (a new task
after ``report.wait``).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.ratelimit import AdaptiveRate
from digest.delivery.sink import Received, SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.observability import exposition
from digest.providers.smtp.transport import SMTPConfig, SMTPTransport
from digest.subscribers.models import Subscriber, Suppression
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import planned_issue

READERS = [(f"reader{i:02}@example.org", f"Reader {i}", ["cardiology"]) for i in range(60)]
PER_SECOND = 5  # what the relay takes
CONFIGURED = 20.0  # DIGEST_SEND_RATE: four times too fast for it
CHUNK = 10


class ThrottlingRelay:
    """Accepts ``PER_SECOND`` messages per second of the test clock and answers ``reply`` to every
    further RCPT within that second."""

    def __init__(self, clock: Clock, sink_of: dict[str, SMTPSink], reply: str):
        self.clock = clock
        self.sink_of = sink_of
        self.reply = reply
        self.window: tuple[int, int] = (0, 0)  # (second, messages accepted in it)
        self.throttled = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        second = int(self.clock().timestamp())
        count = self.window[1] if self.window[0] == second else 0
        if count >= PER_SECOND:
            self.throttled += 1
            return self.reply
        self.window = (second, count + 1)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b"")
        self.sink_of["sink"]._store(received)
        return "250 2.0.0 accepted"


def _worker(settings: Settings, clock: Clock, url: str, redis_url: str) -> Services:
    """One worker process's services, its share of the rate on the test clock."""
    svc = build_services(settings, transport=SMTPTransport(SMTPConfig.from_url(url)), clock=clock)
    svc.delivery.limiter = AdaptiveRate(
        redis.Redis.from_url(redis_url),
        settings.send_rate,
        floor=settings.send_rate_floor,
        sleep=lambda seconds: clock.advance(seconds=seconds),
        now_us=lambda: int(clock().timestamp() * 1_000_000),
    )
    return svc


@pytest.mark.parametrize(
    "reply", ["450 4.7.1 Too many messages, slow down", "421 4.7.0 Rate limit exceeded, try again later"]
)
def test_a_throttling_relay_slows_every_worker_and_everyone_gets_the_digest_once(
    settings: Settings, clock: Clock, redis_url: str, reply: str
) -> None:
    settings = settings.model_copy(
        update={"redis_url": redis_url, "send_rate": CONFIGURED, "send_rate_floor": 1.0, "probe_first_seconds": 2.0}
    )
    sink_of: dict[str, SMTPSink] = {}
    relay = ThrottlingRelay(clock, sink_of, reply)
    with SMTPSink(handler=relay) as sink:
        sink_of["sink"] = sink
        workers = [_worker(settings, clock, sink.url, redis_url) for _ in range(2)]
        ids = planned_issue(workers[0], clock(), READERS)

        # The broker: chunks due at a time; each taken by the next worker in turn.
        order = itertools.count()
        queue: list[tuple[datetime, int, list[int]]] = [
            (clock(), next(order), ids[k : k + CHUNK]) for k in range(0, len(ids), CHUNK)
        ]
        turns = itertools.cycle(workers)
        handed_over = 0
        while queue:
            due, _, chunk = heapq.heappop(queue)
            if due > clock():
                clock.now = due
            report = next(turns).delivery.deliver(chunk)
            assert report.retry == [] and report.failed == 0 and report.paused is None
            if report.throttled:
                handed_over += 1
                heapq.heappush(queue, (clock.advance(seconds=report.wait), next(order), report.throttled))
            assert handed_over < 200, "the throttled rows keep coming back"

        received = Counter(to for r in sink.received for to in r.rcpt_tos)
        assert received == Counter({email: 1 for email, _, _ in READERS})  # everyone, exactly once
        assert relay.throttled > 0  # the relay did throttle
        with session_scope(workers[0].sessions) as s:
            rows = s.execute(
                select(Delivery.status, Delivery.attempts).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            ).all()
            assert {status for status, _ in rows} == {DeliveryStatus.SENT} and len(rows) == len(READERS)
            assert {attempts for _, attempts in rows} == {1}  # no throttle spent a try
            assert s.scalars(select(Suppression.value)).all() == []
            assert s.scalar(select(Issue.status)) == IssueStatus.SENT

        rate = workers[1].delivery.limiter.current()
        assert rate is not None and rate < CONFIGURED  # every worker sends slower than configured
        assert settings.metrics_dir is not None
        scrape = exposition(settings.metrics_dir, None, send_rate=workers[0].delivery.limiter.current).decode()
        shown = next(
            s.value
            for family in text_string_to_metric_families(scrape)
            for s in family.samples
            if s.name == "digest_send_rate"
        )
        assert shown == rate
        for svc in workers:
            svc.close()
