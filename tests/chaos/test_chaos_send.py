"""Fault injection under load: a digest to thousands of subscribers through two real Celery workers
on PostgreSQL and the suite's own Redis, against an SMTP server that answers 451 now and then,
550 for some addresses, drops one connection during DATA and answers some messages slowly. During
the send one worker is SIGKILLed (and another started), Redis is stopped and started again (losing
every queued task), and 100 subscribers unsubscribe through the HTTP endpoint. The test process plays
beat, running the planning task's ``send_due`` every couple of seconds, until the issue is sent.

Then: every still-subscribed subscriber received exactly one message (by Message-ID at the server),
nobody received anything after their unsubscribe committed, the 550 addresses are suppressed, the
issue is ``sent``, and the ledger's sent Message-IDs are exactly those the server accepted.

The SIGKILL is aimed at the documented window: the server accepts a message and holds its 250 while
the worker that sent it is killed, so the message is at the server but recorded by nobody. After the
lease it is sent again with the same Message-ID (unless that subscriber unsubscribed meanwhile). A
duplicate is allowed only for that message (at most one per SIGKILL with SMTP), and counted in the
printed line:

    sent=N duplicates=N lost=N after_unsubscribe=N faults=N

``make test`` runs it with 1,000 subscribers; ``make chaos`` with 5,000.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kombu.exceptions import OperationalError
from sqlalchemy import Connection, Engine, event, select

from digest.db import make_engine, make_session_factory, session_scope, utcnow
from digest.delivery.sink import SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason
from digest.subscribers.tokens import Purpose
from digest.web.app import create_app
from digest.wiring import build_services
from tests.chaos.conftest import FIGURES, PROBE_FIRST_SECONDS, chaos_settings, on_postgresql
from tests.chaos.faults import Accepted, FaultyHandler
from tests.chaos.harness import RedisServer, Worker, live_app, worker_env
from tests.factories import add_summaries, bulk_subscribers, days_before, summary_record

pytestmark = pytest.mark.integration

LEASE_SECONDS = 15  # short, so the killed worker's rows are claimed again within the test
CHUNK_SIZE = 50
UNSUBSCRIBES = 100
OUTAGE_SECONDS = 5.0  # how long the relay refuses logins and transactions
BEAT_EVERY = 2.0  # seconds between send_due runs (beat's job; once a minute in production)


class UnsubscribeCommits:
    """When each unsubscribe committed (time.monotonic(), like the SMTP server's acceptance times),
    recorded from the web app's own engine: the statement that sets a subscriber ``unsubscribed``
    notes its id on the connection, the connection's commit stamps it (a rollback forgets it)."""

    def __init__(self, engine: Engine):
        self.at: dict[int, float] = {}
        self._lock = threading.Lock()
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committed)
        event.listen(engine, "rollback", lambda conn: conn.info.pop("unsubscribed", None))

    def _executed(
        self, conn: Connection, _cursor: object, statement: str, parameters: Any, _context: object, _many: bool
    ) -> None:
        unsubscribing = "UPDATE subscribers SET status" in statement and "unsubscribed_at=CASE" in statement
        if unsubscribing and isinstance(parameters, dict):
            conn.info.setdefault("unsubscribed", set()).add(parameters["who"])

    def _committed(self, conn: Connection) -> None:
        now = time.monotonic()
        with self._lock:
            for subscriber_id in conn.info.pop("unsubscribed", set()):
                self.at.setdefault(subscriber_id, now)


@dataclass
class Chaos:
    """What was done to the system, and when (time.monotonic())."""

    killed_at: list[float] = field(default_factory=list)
    in_flight: list[Accepted] = field(default_factory=list)  # accepted by the server, the sender killed before its 250
    victims: list[Worker] = field(default_factory=list)
    redis_restarted_at: list[float] = field(default_factory=list)
    outage: list[float] = field(default_factory=list)  # when the relay outage began, and ended
    beat_errors: int = 0


def _plan_data(url: str, people: int) -> list[str]:
    """One cardiology summary and ``people`` confirmed cardiology subscribers (bulk inserted)."""
    engine = make_engine(url)
    now = utcnow()
    with session_scope(make_session_factory(engine)) as s:
        add_summaries(s, summary_record(id="chaos-1", specialties=["cardiology"], published_at=days_before(now, 1)))
        emails = [f"reader{i:05d}@example.org" for i in range(people)]
        bulk_subscribers(
            s, [(e, f"Reader {i}", ["cardiology"]) for i, e in enumerate(emails)], created_at=now - timedelta(days=3)
        )
    engine.dispose()
    return emails


def _kill_in_the_window(handler: FaultyHandler, workers: list[Worker], chaos: Chaos) -> None:
    """SIGKILL the worker whose message the server has just accepted, before it hears the 250:
    the one window no protocol closes, hit on purpose."""
    handler.hold_next()
    assert handler.holding.wait(60), "no message reached the server while waiting to hold one"
    assert handler.held is not None
    port, message = handler.held
    victim = next((w for w in workers if w.proc.poll() is None and w.has_connection_from(port)), None)
    assert victim is not None, f"no worker process owns the SMTP connection from port {port}"
    victim.kill()
    chaos.killed_at.append(time.monotonic())
    chaos.in_flight.append(message)
    chaos.victims.append(victim)
    handler.release.set()


def _unsubscriber(base_url: str, tokens: list[str], start: threading.Event, failures: list[str]) -> None:
    """Unsubscribe each token through the one-click endpoint, spread over the send."""
    start.wait(120)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for token in tokens:
            try:
                response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
            time.sleep(0.05)


def run_chaos(tmp_path: Path, database_url: str, redis_server: RedisServer, people: int) -> None:
    rng = random.Random(7)
    emails = _plan_data(database_url, people)
    bounce = frozenset(emails[i] for i in range(37, people, 200))  # 0.5 % answer 550 at RCPT
    handler = FaultyHandler(seed=7, bounce=bounce, drop_after=people // 10)
    deadline = time.monotonic() + 60 + people * 0.06

    with SMTPSink(handler=handler, authenticator=handler.authenticate, auth_require_tls=False) as smtp:
        relay_url = smtp.url.replace("smtp://", "smtp://digest:relay-password@")
        settings = chaos_settings(
            tmp_path, database_url, redis_server.url, relay_url, lease_seconds=LEASE_SECONDS, chunk_size=CHUNK_SIZE
        )
        env = worker_env(
            database_url=database_url,
            broker_url=redis_server.url,
            smtp_url=settings.smtp_url,
            var_dir=tmp_path / "var",
            lease_seconds=LEASE_SECONDS,
            chunk_size=CHUNK_SIZE,
            probe_first_seconds=PROBE_FIRST_SECONDS,
        )
        from digest.dispatch import send_due

        web = build_services(settings)
        commits = UnsubscribeCommits(web.engine)
        with session_scope(web.sessions) as s:
            ids = dict(s.execute(select(Subscriber.email, Subscriber.id)).all())
        leaving = rng.sample([e for e in emails if e not in bounce], UNSUBSCRIBES)
        tokens = [web.tokens.make(Purpose.UNSUBSCRIBE, ids[e]) for e in leaving]
        workers = [Worker("chaos-a", env, tmp_path), Worker("chaos-b", env, tmp_path)]
        chaos = Chaos()
        failures: list[str] = []
        start_unsubscribing = threading.Event()
        started = time.monotonic()
        try:
            with live_app(create_app(web)) as base_url:
                unsubscriber = threading.Thread(
                    target=_unsubscriber, args=(base_url, tokens, start_unsubscribing, failures), daemon=True
                )
                unsubscriber.start()
                send_due(web)  # plans the digest and queues its chunks
                last_beat = time.monotonic()
                while True:
                    accepted = len(handler.accepted)
                    if accepted >= people // 20:
                        start_unsubscribing.set()
                    if not chaos.killed_at and accepted >= people // 4:
                        _kill_in_the_window(handler, workers, chaos)
                        workers.append(Worker("chaos-c", env, tmp_path))
                    if not chaos.redis_restarted_at and accepted >= people // 2:
                        redis_server.restart()
                        chaos.redis_restarted_at.append(time.monotonic())
                    if not chaos.outage and accepted >= people * 6 // 10:
                        handler.outage = True  # the relay refuses logins and transactions for a while
                        chaos.outage.append(time.monotonic())
                    if handler.outage and time.monotonic() - chaos.outage[0] >= OUTAGE_SECONDS:
                        handler.outage = False
                        chaos.outage.append(time.monotonic())
                    with session_scope(web.sessions) as s:
                        status = s.scalar(select(Issue.status))
                    if status == IssueStatus.SENT and not unsubscriber.is_alive():
                        break
                    for w in workers:
                        assert w.proc.poll() is None or w in chaos.victims, "a worker died:\n" + w.tail()
                    assert time.monotonic() < deadline, (
                        f"the issue is still {status} after {time.monotonic() - started:.0f}s "
                        f"({len(handler.accepted)} accepted)\n" + "\n".join(w.tail() for w in workers)
                    )
                    if time.monotonic() - last_beat >= BEAT_EVERY:
                        try:
                            send_due(web)
                        except OperationalError:  # the broker is down: beat tries again next tick
                            chaos.beat_errors += 1
                        last_beat = time.monotonic()
                    time.sleep(0.2)
                unsubscriber.join(60)
        finally:
            for w in workers:
                w.stop()
        elapsed = time.monotonic() - started

        assert failures == []
        arrivals = handler.snapshot()
        copies = handler.copies()
        with session_scope(web.sessions) as s:
            rows = s.execute(
                select(Subscriber.id, Subscriber.email, Subscriber.status, Delivery.status, Delivery.message_id).join(
                    Delivery, Delivery.subscriber_id == Subscriber.id
                )
            ).all()
            suppressed = dict(s.execute(select(Suppression.value, Suppression.reason)).all())
            issue_status = s.scalar(select(Issue.status))
        web.close()

    by_email = {r.email: r for r in rows}
    received = Counter(a.rcpt for a in arrivals)
    gone = {by_email[e].id for e in leaving}
    duplicates = sum(n - 1 for n in copies.values())
    still_subscribed = [e for e in emails if e not in bounce and ids[e] not in gone]
    lost = [e for e in still_subscribed if received[e] == 0]
    after_unsubscribe = [a for a in arrivals if ids[a.rcpt] in gone and a.at > commits.at[ids[a.rcpt]]]
    FIGURES.append(
        f"sent={len(copies)} duplicates={duplicates} lost={len(lost)} "
        f"after_unsubscribe={len(after_unsubscribe)} faults={handler.faults.total}"
    )
    FIGURES.append(
        f"  ({people} subscribers, {elapsed:.1f}s; faults {handler.faults}; worker SIGKILLs {len(chaos.killed_at)}, "
        f"Redis restarts {len(chaos.redis_restarted_at)}, relay outage {chaos.outage[1] - chaos.outage[0]:.1f}s, "
        f"beat runs refused by the broker {chaos.beat_errors})"
    )

    assert issue_status == IssueStatus.SENT
    assert len(by_email) == people  # everybody was planned
    assert set(commits.at) == gone  # every unsubscribe committed, and we know when
    assert after_unsubscribe == []
    assert lost == []
    # Exactly one each, except inside the window: the message accepted as its sender was killed.
    assert duplicates <= len(chaos.killed_at)
    twice = {message_id for message_id, n in copies.items() if n > 1}
    assert twice <= {m.message_id for m in chaos.in_flight}, f"copies outside the SIGKILL window: {twice}"
    for email in bounce:
        assert received[email] == 0
        assert by_email[email][3] == DeliveryStatus.FAILED
        assert suppressed.get(email) == SuppressionReason.HARD_BOUNCE
    for email in leaving:
        assert suppressed.get(email) == SuppressionReason.UNSUBSCRIBED
        assert by_email[email][2] == SubscriberStatus.UNSUBSCRIBED
    # The ledger matches the server: what it says was sent is what arrived, and nothing else is open.
    # The one exception is the window itself: the message accepted as its sender was killed is not
    # sent again if its subscriber unsubscribed before the lease ran out; the server has it, the
    # ledger says cancelled (it never learnt of the acceptance).
    sent_in_ledger = {r.message_id for r in rows if r[3] == DeliveryStatus.SENT}
    assert sent_in_ledger <= set(copies)
    window = {m.message_id: m.rcpt for m in chaos.in_flight}
    for message_id in set(copies) - sent_in_ledger:
        assert message_id in window, f"{message_id} arrived but the ledger does not say sent"
        assert ids[window[message_id]] in gone and by_email[window[message_id]][3] == DeliveryStatus.CANCELLED
    assert {r[3] for r in rows} <= {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED}
    assert handler.faults.dropped == 1 and handler.faults.transient > 0 and handler.faults.slow > 0
    assert len(chaos.killed_at) == 1 and len(chaos.redis_restarted_at) == 1
    assert len(chaos.outage) == 2 and handler.faults.refused > 0  # the outage began, was felt, and ended


@on_postgresql
def test_chaos_send_small(tmp_path: Path, chaos_db: str, own_redis: RedisServer) -> None:
    """The same faults and interruptions over 1,000 subscribers (part of ``make test``)."""
    run_chaos(tmp_path, chaos_db, own_redis, 1000)


@pytest.mark.chaos
@on_postgresql
def test_chaos_send_full(tmp_path: Path, chaos_db: str, own_redis: RedisServer) -> None:
    """5,000 subscribers (``make chaos``)."""
    run_chaos(tmp_path, chaos_db, own_redis, 5000)
