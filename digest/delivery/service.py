"""Deliver a chunk of ledger rows: claim, re-check, render per variant, send, record. Exactly once.

The protocol, per chunk of delivery ids:
1. *Claim* (one short transaction): pending rows, and sending rows whose lease ran out, become
   ``sending`` with a fresh lease and this run's claim token. Rows already sent, failed, cancelled
   or claimed by a live lease are skipped, so a redelivered task sends nothing twice; so are rows
   of an issue that is not ``sending`` (paused or cancelled by an editor).
2. For each transport batch (one message for SMTP), in one transaction: touch the rows (``UPDATE ...
   WHERE claim_token = mine AND status = 'sending'``), which locks them, so an unsubscribe that
   cancels them either commits first (the message is not sent) or waits until this batch is
   recorded; re-check subscriber status and the suppression list; send; record the outcome; commit.
   The touch also requires the issue to be ``sending``: after a pause commits, no further batch
   goes out, and the claimed rows that did not go out are released back to ``pending`` for resume.

The one window no protocol closes: the server accepted a message and the process died (or the
database went away) before the commit. The row is still ``sending``; after the lease it is sent
again, with the same Message-ID, so receiving systems that de-duplicate by Message-ID show one.
With SMTP the window is one message.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.db import session_scope
from digest.delivery.models import Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus
from digest.delivery.transport import SendResult, Transport, TransportError
from digest.events.models import Suppression, SuppressionReason
from digest.events.suppression import suppress, suppression_keys
from digest.ingest.models import Specialty, Summary
from digest.issues.intro import render_intro
from digest.rendering.compiled import Variant
from digest.rendering.compose import Addressee, MessageComposer, build_variant
from digest.rendering.message import OutgoingMessage
from digest.selection.carried import summaries_by_delivery
from digest.subscribers.models import Subscriber, SubscriberStatus, subscriber_specialties

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
_SENDING_ISSUES = select(Issue.id).where(Issue.status == IssueStatus.SENDING)


class RateLimiter(Protocol):
    def acquire(self, count: int) -> None:
        """Block until ``count`` messages may be sent."""


class Unlimited:
    def acquire(self, count: int) -> None:
        return None


class SendRecorder(Protocol):
    def record(self, transport: str, seconds: float, results: Sequence[SendResult]) -> None:
        """Count one transport call: how long it took and what became of each message."""


class NotRecorded:
    def record(self, transport: str, seconds: float, results: Sequence[SendResult]) -> None:
        return None


@dataclass
class DeliverReport:
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0  # not claimable: already sent, or claimed by a live lease elsewhere
    retry: list[int] = field(default_factory=list)  # transient failures, back to pending
    messages: list[OutgoingMessage] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    delivery_id: int
    issue_id: int
    who: Addressee
    summary_ids: tuple[str, ...]


class DeliveryService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        composer: MessageComposer,
        transport: Transport,
        *,
        clock: Callable[[], datetime],
        lease: timedelta = timedelta(minutes=10),
        limiter: RateLimiter | None = None,
        recorder: SendRecorder | None = None,
        keep_messages: bool = False,
    ):
        self.sessions = session_factory
        self.composer = composer
        self.transport = transport
        self.clock = clock
        self.lease = lease
        self.limiter = limiter or Unlimited()
        self.recorder = recorder or NotRecorded()
        self.keep_messages = keep_messages

    # -- 1. claim -------------------------------------------------------------------------------
    def claim(self, ids: Sequence[int], token: str) -> list[int]:
        now = self.clock()
        with session_scope(self.sessions) as session:
            claimable = (
                select(Delivery.id)
                .where(
                    Delivery.id.in_(ids),
                    Delivery.issue_id.in_(_SENDING_ISSUES),
                    or_(
                        Delivery.status == DeliveryStatus.PENDING,
                        (Delivery.status == DeliveryStatus.SENDING) & (Delivery.lease_until < now),
                    ),
                )
                .with_for_update(skip_locked=True)
            )
            claimed = session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(claimable.scalar_subquery()))
                .values(
                    status=DeliveryStatus.SENDING,
                    lease_until=now + self.lease,
                    claim_token=token,
                    attempts=Delivery.attempts + 1,
                )
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            ).all()
        return sorted(claimed)

    # -- 2. load ---------------------------------------------------------------------------------
    def _load(self, session: Session, ids: Sequence[int]) -> tuple[list[_Row], dict[str, Summary], dict[int, dict[str, Any]]]:
        rows = session.execute(
            select(Delivery.id, Delivery.issue_id, Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.edition)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        ).all()
        items = summaries_by_delivery(session, ids)
        specialties: dict[int, dict[str, str]] = defaultdict(dict)
        for sid, slug, name in session.execute(
            select(subscriber_specialties.c.subscriber_id, Specialty.slug, Specialty.name)
            .join(Specialty, Specialty.id == subscriber_specialties.c.specialty_id)
            .where(subscriber_specialties.c.subscriber_id.in_({r[2] for r in rows}))
        ):
            specialties[sid][slug] = name
        wanted = {s for ids_ in items.values() for s in ids_}
        summaries = {s.id: s for s in session.scalars(select(Summary).where(Summary.id.in_(wanted)))}
        issues = {
            i.id: issue_context(i, self.composer.base_url)
            for i in session.scalars(select(Issue).where(Issue.id.in_({r[1] for r in rows})))
        }
        out = [
            _Row(d_id, issue_id, Addressee(sid, email, name, edition, specialties[sid]), tuple(items.get(d_id, ())))
            for d_id, issue_id, sid, email, name, edition in rows
        ]
        return out, summaries, issues

    # -- the whole chunk -----------------------------------------------------------------------
    def deliver(self, ids: Sequence[int]) -> DeliverReport:
        report = DeliverReport()
        token = secrets.token_hex(16)
        claimed = self.claim(ids, token)
        report.skipped = len(set(ids)) - len(claimed)
        if not claimed:
            return report
        with session_scope(self.sessions) as session:
            rows, summaries, issues = self._load(session, claimed)
        sendable: list[tuple[_Row, Variant]] = []
        variant_keys: dict[int, str] = {}
        variants: dict[tuple[Any, ...], Variant] = {}  # rows with the same selection share one
        for row in rows:
            shape = (row.issue_id, row.who.edition, row.summary_ids, tuple(sorted(row.who.specialties.items())))
            variant = variants.get(shape)
            if variant is None:
                present = [summaries[s] for s in row.summary_ids if s in summaries]
                variant = variants[shape] = build_variant(row.who.edition, present, row.who.specialties, issues[row.issue_id])
            if not variant.items:
                continue  # every summary was withdrawn since planning: cancelled below
            variant_keys[row.delivery_id] = variant.key
            sendable.append((row, variant))
        empty = [r.delivery_id for r in rows if r.delivery_id not in variant_keys]
        if empty:
            self._cancel(empty, "no summaries left to send")
            report.cancelled += len(empty)
        # Composed a transport batch at a time: a chunk's messages are never all held at once.
        now = self.clock()
        size = max(1, self.transport.batch_size)
        for start in range(0, len(sendable), size):
            batch = [self.composer.compose(r.delivery_id, r.issue_id, r.who, v, now) for r, v in sendable[start : start + size]]
            self._send_batch(batch, token, variant_keys, report)
        self._release(token)
        for issue_id in {r.issue_id for r in rows}:
            finish_issue_if_done(self.sessions, issue_id, self.clock())
        return report

    def _cancel(self, ids: Sequence[int], reason: str) -> None:
        with session_scope(self.sessions) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.CANCELLED, error=reason, lease_until=None, claim_token=None)
                .execution_options(synchronize_session=False)
            )

    def _release(self, token: str) -> None:
        """Rows this run claimed but did not send (their issue was paused meanwhile) go back to pending."""
        with session_scope(self.sessions) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.claim_token == token, Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.PENDING, lease_until=None, claim_token=None)
                .execution_options(synchronize_session=False)
            )

    def _send_batch(self, batch: list[OutgoingMessage], token: str, variant_keys: dict[int, str], report: DeliverReport) -> None:
        now = self.clock()
        with session_scope(self.sessions) as session:
            # Lock our rows; an unsubscribe that cancelled one of them has already committed.
            still_ours = set(
                session.scalars(
                    update(Delivery)
                    .where(
                        Delivery.id.in_([m.delivery_id for m in batch]),
                        Delivery.claim_token == token,
                        Delivery.status == DeliveryStatus.SENDING,
                        Delivery.issue_id.in_(_SENDING_ISSUES),
                    )
                    .values(lease_until=now + self.lease)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
            )
            blocked = self._blocked(session, [m for m in batch if m.delivery_id in still_ours])
            sendable = [m for m in batch if m.delivery_id in still_ours and m.delivery_id not in blocked]
            report.skipped += len(batch) - len(still_ours)
            outcomes = _Outcomes(now)
            for delivery_id, reason in blocked.items():
                outcomes.add(SendResult.failed(delivery_id, reason, permanent=True), DeliveryStatus.CANCELLED)
                report.cancelled += 1
            if sendable:
                self._send(session, sendable, variant_keys, outcomes, report)
            outcomes.write(session)

    def _send(
        self, session: Session, sendable: list[OutgoingMessage], variant_keys: dict[int, str], outcomes: _Outcomes, report: DeliverReport
    ) -> None:
        """Hand the messages to the transport and note each outcome (written before the commit)."""
        self.limiter.acquire(len(sendable))
        started = time.perf_counter()
        try:
            results = self.transport.send(sendable)
        except TransportError as exc:
            log.warning("transport %s failed for a batch of %d: %s", self.transport.name, len(sendable), exc)
            results = [SendResult.failed(m.delivery_id, str(exc), permanent=False) for m in sendable]
        self.recorder.record(self.transport.name, time.perf_counter() - started, results)
        by_id = {m.delivery_id: m for m in sendable}
        transient = [r for r in results if not r.accepted and not r.permanent]
        attempts = self._attempts(session, [r.delivery_id for r in transient]) if transient else {}
        for result in results:
            msg = by_id[result.delivery_id]
            if result.accepted:
                outcomes.add(result, DeliveryStatus.SENT, msg.message_id, variant_keys.get(msg.delivery_id, ""))
                report.sent += 1
                if self.keep_messages:
                    report.messages.append(msg)
            elif result.permanent:
                outcomes.add(result, DeliveryStatus.FAILED, msg.message_id)
                if result.bounce:
                    suppress(session, msg.to_email, SuppressionReason.HARD_BOUNCE, result.error)
                report.failed += 1
            elif attempts.get(msg.delivery_id, 0) >= MAX_ATTEMPTS:
                tried = attempts[msg.delivery_id]
                gave_up = SendResult.failed(msg.delivery_id, f"gave up after {tried} attempts: {result.error}", permanent=True)
                outcomes.add(gave_up, DeliveryStatus.FAILED, msg.message_id)
                report.failed += 1
            else:
                outcomes.add(result, DeliveryStatus.PENDING)
                report.retry.append(msg.delivery_id)

    @staticmethod
    def _attempts(session: Session, ids: list[int]) -> dict[int, int]:
        return {d: n or 0 for d, n in session.execute(select(Delivery.id, Delivery.attempts).where(Delivery.id.in_(ids)))}

    def _blocked(self, session: Session, batch: list[OutgoingMessage]) -> dict[int, str]:
        """Rows whose subscriber is no longer active or whose address is suppressed, checked at send time."""
        if not batch:
            return {}
        inactive = dict(
            session.execute(
                select(Delivery.id, Subscriber.status)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.id.in_([m.delivery_id for m in batch]), Subscriber.status != SubscriberStatus.ACTIVE)
            ).all()
        )
        keys = {m.delivery_id: suppression_keys(m.to_email) for m in batch}
        listed = set(session.scalars(select(Suppression.value).where(Suppression.value.in_({k for ks in keys.values() for k in ks}))))
        blocked = {d: f"subscriber is {status}" for d, status in inactive.items()}
        blocked.update({d: "address is suppressed" for d, ks in keys.items() if listed.intersection(ks)})
        return blocked


class _Outcomes:
    """The outcomes of one transport batch, written together: one executemany per set of columns
    (all rows ``sent``, in the common case), inside the batch's transaction."""

    def __init__(self, now: datetime):
        self.now = now
        self.rows: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)

    def add(self, result: SendResult, status: DeliveryStatus, message_id: str | None = None, variant_key: str | None = None) -> None:
        values: dict[str, Any] = {"id": result.delivery_id, "status": status, "lease_until": None, "claim_token": None, "error": result.error}
        if status == DeliveryStatus.SENT:
            values.update(sent_at=self.now, provider_message_id=result.provider_id, message_id=message_id)
            if variant_key:
                values["variant_key"] = variant_key
        elif message_id:
            values["message_id"] = message_id
        self.rows[frozenset(values)].append(values)

    def write(self, session: Session) -> None:
        for rows in self.rows.values():
            session.execute(update(Delivery), rows)


def issue_context(issue: Issue, base_url: str) -> dict[str, Any]:
    """What the templates need of an issue (plain data, part of the variant key).

    Campaigns carry their sanitised intro, a "view in browser" link to the public archive and
    tracked item links; cadence digests are personal mixes with none of these.
    """
    campaign = issue.kind == IssueKind.CAMPAIGN
    intro_html, intro_text = render_intro(issue.intro) if campaign else ("", "")
    return {
        "id": issue.id,
        "subject": issue.subject if campaign else "",
        "preheader": issue.preheader,
        "intro_html": intro_html,
        "intro_text": intro_text,
        "web_url": f"{base_url.rstrip('/')}/issues/{issue.id}" if campaign else "",
        "track_clicks": campaign,
    }


def finish_issue_if_done(factory: sessionmaker[Session], issue_id: int, now: datetime) -> bool:
    """Mark a sending issue sent once no row is pending or sending; True if it is (now) sent.

    One conditional UPDATE: it writes before it reads, so on SQLite it never has to upgrade a stale
    read snapshot to a write (which fails at once instead of waiting for the lock).
    """
    still_open = exists().where(
        Delivery.issue_id == issue_id, Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING))
    )
    with session_scope(factory) as session:
        session.execute(
            update(Issue)
            .where(Issue.id == issue_id, Issue.status == IssueStatus.SENDING, ~still_open)
            .values(status=IssueStatus.SENT, sent_at=now)
            .execution_options(synchronize_session=False)
        )
        return session.scalar(select(Issue.status).where(Issue.id == issue_id)) == IssueStatus.SENT
