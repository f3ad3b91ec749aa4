"""Outgoing webhooks: events recorded with the change that caused them, sent afterwards, signed.

- ``emit`` writes one ``webhook_deliveries`` row per endpoint listening for the event, in the
  caller's transaction (an outbox: the event exists if and only if the change committed), and marks
  the session so that ``wiring`` queues the sending task after the commit. The request that caused
  the event never waits for a receiver.
- ``WebhookSender.deliver_due`` (the ``deliver_webhooks`` Celery task) sends what is due, oldest
  first. Deliveries about one subscriber go to one endpoint in order: only the oldest unfinished
  delivery of each (endpoint, subscriber) may be sent, so a receiver never sees "unsubscribed"
  before the "confirmed" that preceded it, even while the earlier one is being retried.
- A failed attempt (no answer, or a status other than 2xx) is tried again after an exponential,
  jittered backoff; after ``max_attempts`` the delivery is marked failed (shown in the dashboard
  and by ``digest webhooks deliveries``), and the subscriber's next event may go.
- Signatures follow Standard Webhooks (https://www.standardwebhooks.com): headers ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
  keyed with the endpoint's secret (``whsec_<base64 key>``). Receivers check the timestamp is recent
  to refuse replays.

One sender runs at a time (a PostgreSQL advisory lock): that keeps the per-subscriber order across
worker processes without holding row locks while waiting for a receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import Connection, Engine, Select, select, text
from sqlalchemy.orm import Session

from digest.integrations.models import WebhookDelivery, WebhookEndpoint, WebhookStatus

log = logging.getLogger(__name__)

EVENTS = ("subscribed", "confirmed", "unsubscribed", "bounced", "complained", "issue.sent")
PENDING_KEY = "digest.webhooks_pending"  # in Session.info: this transaction emitted events
_LOCK_ID = 0x64696765  # "dige": the advisory lock one sender holds at a time
_BATCH = 500


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one message (Standard Webhooks, version 1)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def listeners(event: str) -> Select[Any]:
    """Active endpoints that may listen for ``event`` (a substring match: a cheap pre-check only)."""
    return select(WebhookEndpoint.id).where(WebhookEndpoint.active, WebhookEndpoint.events.contains(event))


def listening(session: Session, event: str) -> bool:
    """Whether any active endpoint may listen for ``event`` (checked before building its data)."""
    return session.connection().execute(listeners(event).limit(1)).first() is not None


def emit(session: Session, event: str, data: dict[str, Any], subscriber_id: int | None, at: datetime) -> int:
    """Record ``event`` for every active endpoint that listens for it; returns how many deliveries."""
    assert event in EVENTS, event
    endpoints = [
        e for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active)) if event in e.events.split()
    ]
    for endpoint in endpoints:
        message_id = "msg_" + secrets.token_hex(12)
        body = json.dumps({"type": event, "timestamp": at.isoformat(), "data": data}, sort_keys=True)
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                message_id=message_id,
                event=event,
                subscriber_id=subscriber_id,
                payload=body,
                next_attempt_at=at,
                created_at=at,
            )
        )
    if endpoints:
        session.info[PENDING_KEY] = True
    return len(endpoints)


@dataclass
class SendReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    busy: bool = False  # another sender holds the lock (it sends what is due)
    next_due: datetime | None = None  # the earliest pending delivery not yet due, if any
    errors: list[str] = field(default_factory=list)


class WebhookSender:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        *,
        max_attempts: int,
        retry_seconds: float,
        timeout: float = 10.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self.http = requests.Session()

    def backoff(self, attempts: int) -> timedelta:
        """Exponential in the attempts made, with jitter (between half and all of it), at most a day."""
        full = min(86400.0, self.retry_seconds * 2 ** (attempts - 1))
        return timedelta(seconds=random.uniform(full / 2, full))

    def deliver_due(self) -> SendReport:
        """Send every due delivery that is first in its subscriber's line, until none is left."""
        report = SendReport()
        # One connection throughout: the advisory lock belongs to it, and outlives each commit.
        with self.engine.connect() as conn:
            if not self._lock(conn):
                report.busy = True
                return report
            try:
                with Session(bind=conn, expire_on_commit=False) as session:
                    while self._round(session, report):
                        pass
            finally:
                self._unlock(conn)
            report.next_due = conn.scalar(
                select(WebhookDelivery.next_attempt_at)
                .where(WebhookDelivery.status == WebhookStatus.PENDING)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(1)
            )
        return report

    def _round(self, session: Session, report: SendReport) -> bool:
        """One pass over the pending deliveries, oldest first; True if something was attempted."""
        now = self.clock()
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == WebhookStatus.PENDING)
            .order_by(WebhookDelivery.id)
            .limit(_BATCH)
        ).all()
        endpoints = {e.id: e for e in session.scalars(select(WebhookEndpoint))}
        heads: set[tuple[int, int]] = set()
        attempted = False
        for row in rows:
            if row.subscriber_id is not None:
                key = (row.endpoint_id, row.subscriber_id)
                if key in heads:
                    continue  # an earlier event about this subscriber is still on its way
                heads.add(key)
            if row.next_attempt_at > now:
                continue
            self._attempt(row, endpoints[row.endpoint_id], report)
            session.commit()
            attempted = True
        return attempted

    def _attempt(self, row: WebhookDelivery, endpoint: WebhookEndpoint, report: SendReport) -> None:
        now = self.clock()
        # The signed timestamp is the wall clock's: receivers refuse one far from their own time
        # (replay protection), whatever clock schedules the retries.
        stamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "digest-webhooks/1",
            "webhook-id": row.message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(endpoint.secret, row.message_id, stamp, row.payload),
        }
        row.attempts += 1
        error: str | None = None
        try:
            answer = self.http.post(
                endpoint.url, data=row.payload.encode(), headers=headers, timeout=self.timeout, allow_redirects=False
            )
            row.last_status_code = answer.status_code
            if 200 <= answer.status_code < 300:
                row.status = WebhookStatus.DELIVERED
                row.delivered_at = now
                row.last_error = None
                report.delivered += 1
                return
            error = f"answered {answer.status_code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        row.last_error = error
        if row.attempts >= self.max_attempts or not endpoint.active:
            row.status = WebhookStatus.FAILED
            report.failed += 1
            log.warning(
                "webhook %s to %s failed after %d attempts: %s", row.message_id, endpoint.url, row.attempts, error
            )
        else:
            row.next_attempt_at = now + self.backoff(row.attempts)
            report.retrying += 1

    @staticmethod
    def _lock(conn: Connection) -> bool:
        if conn.dialect.name != "postgresql":
            return True  # SQLite: one writer at a time anyway, and no broker to run senders in parallel
        locked = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_ID}))
        conn.commit()  # the lock is the connection's; the Session then runs its own transactions
        return locked

    @staticmethod
    def _unlock(conn: Connection) -> None:
        conn.rollback()
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
            conn.commit()

    def close(self) -> None:
        self.http.close()
