"""Deliver a chunk of ledger rows: load, render per variant, then per batch lock, send, record. Exactly once.

The protocol, per chunk of delivery ids:
1. *Load* (one short read): the rows still ``pending`` whose issue is ``sending``, with what their
   messages need. Rows already sent, failed or cancelled are skipped, so a redelivered task sends
   nothing twice, and nothing of a paused or cancelled issue is rendered.
2. For each transport batch (one message for SMTP by default), in one transaction:
   *take* the rows: one ``UPDATE`` records them as ``sent`` (with their Message-IDs) where they are
   still ``pending`` and their issue still ``sending``, and returns the ones it took. It locks
   them, so a concurrent worker holding the same ids (a duplicated task) waits and then finds them
   sent, and an unsubscribe that cancels one either committed first (the row is not taken) or waits
   until this batch is recorded. Then re-check subscriber status and the suppression list; send;
   correct the rows whose outcome was not what was recorded (a failure, a transient error back to
   ``pending``, a provider's own message id); commit. In the common case that is two statements
   and a commit per batch, and one row version per message.

Nothing is committed between taking a row and recording its outcome, so a worker that dies in a
batch leaves its rows ``pending`` (the transaction is rolled back) and the redelivered task, or the
next dispatch of the issue, sends them. The one window no protocol closes: the server accepted a
message and the process died (or the database went away) before the commit. It is sent again, with
the same Message-ID, so receiving systems that de-duplicate by Message-ID show one. With SMTP the
window is one batch.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, TextClause, bindparam, cast, exists, func, null, select, text, union_all, update
from sqlalchemy.orm import Session, sessionmaker

from digest.db import ArrayLiteral, InList, UTCDateTime, rowcount, session_scope
from digest.delivery.summary_cache import SummaryCache
from digest.delivery.transport import SendResult, Transport, TransportError
from digest.ingest.models import Specialty, Summary
from digest.integrations.webhooks import emit
from digest.ledger.carried import summaries_by_selection
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus
from digest.rendering.compiled import Variant
from digest.rendering.compose import Addressee, MessageComposer, build_variant
from digest.rendering.intro import render_intro
from digest.rendering.message import OutgoingMessage
from digest.subscribers.models import (
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
    subscriber_specialties,
)
from digest.subscribers.suppression import suppress, suppression_keys

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
_SENDING_ISSUES = select(Issue.id).where(Issue.status == IssueStatus.SENDING)
# What a chunk's messages need, each read in one statement (built once: the send path runs them per chunk).
_PENDING_ROWS = (
    select(
        Delivery.id,
        Delivery.issue_id,
        Delivery.selection_id,
        Subscriber.id,
        Subscriber.email,
        Subscriber.name,
        Subscriber.edition,
    )
    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
    .where(
        InList(Delivery.id, "ids"), Delivery.status == DeliveryStatus.PENDING, Delivery.issue_id.in_(_SENDING_ISSUES)
    )
    .order_by(Delivery.id)
)
_SPECIALTIES_OF = (
    select(subscriber_specialties.c.subscriber_id, Specialty.slug, Specialty.name)
    .join(Specialty, Specialty.id == subscriber_specialties.c.specialty_id)
    .where(InList(subscriber_specialties.c.subscriber_id, "subscriber_ids"))
)


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
    skipped: int = 0  # not pending any more (sent by an earlier or concurrent run, cancelled) or issue not sending
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
        limiter: RateLimiter | None = None,
        recorder: SendRecorder | None = None,
        keep_messages: bool = False,
    ):
        self.sessions = session_factory
        self.composer = composer
        self.transport = transport
        self.clock = clock
        self.limiter = limiter or Unlimited()
        self.recorder = recorder or NotRecorded()
        self.keep_messages = keep_messages
        self.summaries = SummaryCache()

    # -- 1. load --------------------------------------------------------------------------------
    def _load(
        self, session: Session, ids: Sequence[int]
    ) -> tuple[list[_Row], dict[str, Summary], dict[int, dict[str, Any]]]:
        """The chunk's rows still to send (pending, issue sending), with their summaries and issues."""
        rows = session.execute(_PENDING_ROWS, {"ids": list(ids)}).all()
        if not rows:
            return [], {}, {}
        lists = summaries_by_selection(session, {r[2] for r in rows if r[2] is not None})
        specialties: dict[int, dict[str, str]] = defaultdict(dict)
        for sid, slug, name in session.execute(_SPECIALTIES_OF, {"subscriber_ids": list({r[3] for r in rows})}):
            specialties[sid][slug] = name
        wanted = list({s for ids_ in lists.values() for s in ids_})
        summaries = self.summaries.get(session, wanted)
        issues = {
            i.id: issue_context(i, self.composer.base_url)
            for i in session.scalars(select(Issue).where(Issue.id.in_({r[1] for r in rows})))
        }
        out = [
            _Row(
                d_id,
                issue_id,
                Addressee(sid, email, name, edition, specialties[sid]),
                tuple(lists.get(selection_id, ()) if selection_id is not None else ()),
            )
            for d_id, issue_id, selection_id, sid, email, name, edition in rows
        ]
        return out, summaries, issues

    # -- the whole chunk -----------------------------------------------------------------------
    def deliver(self, ids: Sequence[int]) -> DeliverReport:
        report = DeliverReport()
        with session_scope(self.sessions) as session:
            rows, summaries, issues = self._load(session, ids)
        report.skipped = len(set(ids)) - len(rows)
        if not rows:
            return report
        sendable: list[tuple[_Row, Variant]] = []
        variant_keys: dict[int, str] = {}
        variants: dict[tuple[Any, ...], Variant] = {}  # rows with the same selection share one
        for row in rows:
            shape = (row.issue_id, row.who.edition, row.summary_ids, tuple(sorted(row.who.specialties.items())))
            variant = variants.get(shape)
            if variant is None:
                present = [summaries[s] for s in row.summary_ids if s in summaries]
                variant = variants[shape] = build_variant(
                    row.who.edition, present, row.who.specialties, issues[row.issue_id]
                )
            if not variant.items:
                continue  # every summary was withdrawn since planning: cancelled below
            variant_keys[row.delivery_id] = variant.key
            sendable.append((row, variant))
        empty = [r.delivery_id for r in rows if r.delivery_id not in variant_keys]
        if empty:
            report.cancelled += self._cancel(empty, "no summaries left to send")
        # Composed a transport batch at a time: a chunk's messages are never all held at once.
        now = self.clock()
        size = max(1, self.transport.batch_size)
        for start in range(0, len(sendable), size):
            batch = [
                self.composer.compose(r.delivery_id, r.issue_id, r.who, v, now)
                for r, v in sendable[start : start + size]
            ]
            self._send_batch(batch, variant_keys, report)
        for issue_id in {r.issue_id for r in rows}:
            finish_issue_if_done(self.sessions, issue_id, self.clock())
        return report

    def _cancel(self, ids: Sequence[int], reason: str) -> int:
        with session_scope(self.sessions) as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.CANCELLED, error=reason)
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)

    def _send_batch(self, batch: list[OutgoingMessage], variant_keys: dict[int, str], report: DeliverReport) -> None:
        now = self.clock()
        with session_scope(self.sessions) as session:
            # Take our rows, recorded as sent; an unsubscribe that cancelled one has already committed.
            taken = _take(session, batch, variant_keys, now)
            mine = [m for m in batch if m.delivery_id in taken]
            report.skipped += len(batch) - len(mine)
            blocked = self._blocked(session, mine)
            corrections = _Corrections()
            for delivery_id, reason in blocked.items():
                corrections.add(delivery_id, DeliveryStatus.CANCELLED, reason)
                report.cancelled += 1
            sendable = [m for m in mine if m.delivery_id not in blocked]
            if sendable:
                self._send(session, sendable, corrections, report)
            corrections.write(session)

    def _send(
        self, session: Session, sendable: list[OutgoingMessage], corrections: _Corrections, report: DeliverReport
    ) -> None:
        """Hand the messages to the transport and correct the rows whose outcome was not ``sent``
        under their own Message-ID (written before the commit)."""
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
                if result.provider_id != msg.message_id:
                    corrections.provider_id(result.delivery_id, result.provider_id)
                report.sent += 1
                if self.keep_messages:
                    report.messages.append(msg)
            elif result.permanent:
                corrections.add(result.delivery_id, DeliveryStatus.FAILED, result.error, message_id=msg.message_id)
                if result.bounce:
                    suppress(session, msg.to_email, SuppressionReason.HARD_BOUNCE, result.error)
                report.failed += 1
            elif attempts.get(msg.delivery_id, 0) >= MAX_ATTEMPTS:
                tried = attempts[msg.delivery_id]
                corrections.add(
                    result.delivery_id,
                    DeliveryStatus.FAILED,
                    f"gave up after {tried} attempts: {result.error}",
                    message_id=msg.message_id,
                )
                report.failed += 1
            else:
                corrections.add(result.delivery_id, DeliveryStatus.PENDING, result.error)
                report.retry.append(msg.delivery_id)

    @staticmethod
    def _attempts(session: Session, ids: list[int]) -> dict[int, int]:
        return {
            d: n or 0 for d, n in session.execute(select(Delivery.id, Delivery.attempts).where(Delivery.id.in_(ids)))
        }

    @staticmethod
    def _blocked(session: Session, batch: list[OutgoingMessage]) -> dict[int, str]:
        """Rows whose subscriber is no longer active or whose address is suppressed, checked at send time."""
        if not batch:
            return {}
        keys = {m.delivery_id: suppression_keys(m.to_email) for m in batch}
        params = {"ids": list(keys), "keys": list({k for ks in keys.values() for k in ks})}
        blocked: dict[int, str] = {}
        listed: set[str] = set()
        for delivery_id, found in session.connection().execute(_BLOCKED, params):
            if delivery_id is None:
                listed.add(found)
            else:
                blocked[delivery_id] = f"subscriber is {found}"
        blocked.update({d: "address is suppressed" for d, ks in keys.items() if listed.intersection(ks)})
        return blocked


# What may stop a taken row at send time, in one round trip: (delivery id, subscriber status) for
# subscribers no longer active, and (NULL, entry) for the suppression entries that match an address.
_BLOCKED = union_all(
    select(Delivery.id, Subscriber.status)
    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
    .where(InList(Delivery.id, "ids"), Subscriber.status != SubscriberStatus.ACTIVE),
    select(cast(null(), Integer), Suppression.value).where(InList(Suppression.value, "keys")),
)


def _take(session: Session, batch: list[OutgoingMessage], variant_keys: dict[int, str], now: datetime) -> set[int]:
    """Lock the batch's rows that are still pending (issue still sending) and record them as sent
    with their Message-IDs, in one statement; returns the ids it took. The caller corrects the
    rows whose send turns out otherwise before it commits."""
    ids = [m.delivery_id for m in batch]
    message_ids = [m.message_id for m in batch]
    keys = [variant_keys.get(i, "") for i in ids]
    if session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = {"now": now, "ids": ids, "message_ids": message_ids, "variant_keys": keys}
        statement = _TAKE_ARRAYS
    else:
        params = {"now": now}
        for k, values in enumerate(zip(ids, message_ids, keys, strict=True)):
            params[f"d{k}"], params[f"m{k}"], params[f"v{k}"] = values
        statement = _take_values(len(batch))
    return set(session.connection().execute(statement, params).scalars())


def _take_sql(batch_rows: str) -> TextClause:
    """The take, given a FROM item ``batch`` with columns (id, message_id, variant_key)."""
    return text(
        f"UPDATE deliveries SET status = '{DeliveryStatus.SENT}', sent_at = :now, attempts = attempts + 1, "
        "error = NULL, "
        "message_id = batch.message_id, provider_message_id = batch.message_id, variant_key = batch.variant_key "
        f"FROM {batch_rows} WHERE deliveries.id = batch.id AND deliveries.status = '{DeliveryStatus.PENDING}' "
        f"AND deliveries.issue_id IN (SELECT id FROM issues WHERE status = '{IssueStatus.SENDING}') "
        "RETURNING deliveries.id"
    ).bindparams(bindparam("now", type_=UTCDateTime()))


# PostgreSQL: the batch as three arrays, so the statement's text is the same for any batch size.
_TAKE_ARRAYS = _take_sql(
    "unnest(CAST(:ids AS integer[]), CAST(:message_ids AS text[]), CAST(:variant_keys AS text[])) "
    "AS batch (id, message_id, variant_key)"
).bindparams(*(bindparam(name, type_=ArrayLiteral()) for name in ("ids", "message_ids", "variant_keys")))


@functools.cache
def _take_values(size: int) -> TextClause:
    """Elsewhere (SQLite): the batch as a ``VALUES`` list of ``size`` rows (built once per size)."""
    rows = ", ".join(f"(:d{k}, :m{k}, :v{k})" for k in range(size))
    return _take_sql(
        f"(SELECT column1 AS id, column2 AS message_id, column3 AS variant_key FROM (VALUES {rows})) AS batch"
    )


class _Corrections:
    """The rows of a batch whose outcome differs from the ``sent`` that taking them recorded,
    written together before the commit: one executemany per set of columns (none, usually)."""

    def __init__(self) -> None:
        self.rows: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)

    def add(
        self, delivery_id: int, status: DeliveryStatus, error: str | None, *, message_id: str | None = None
    ) -> None:
        """Not sent: failed (keeps the Message-ID it was tried under), cancelled, or back to pending."""
        self._row(
            id=delivery_id,
            status=status,
            error=error,
            sent_at=None,
            message_id=message_id,
            provider_message_id=None,
            variant_key="",
        )

    def provider_id(self, delivery_id: int, provider_id: str | None) -> None:
        """Sent, under the provider's own message id (HTTP APIs) rather than the Message-ID."""
        self._row(id=delivery_id, provider_message_id=provider_id)

    def _row(self, **values: Any) -> None:
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
    still_open = exists().where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.PENDING)
    with session_scope(factory) as session:
        finished = (
            session.connection()
            .execute(
                update(Issue)
                .where(Issue.id == issue_id, Issue.status == IssueStatus.SENDING, ~still_open)
                .values(status=IssueStatus.SENT, sent_at=now)
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
        if finished:
            _emit_issue_sent(session, issue_id, now)
        return session.scalar(select(Issue.status).where(Issue.id == issue_id)) == IssueStatus.SENT


def _emit_issue_sent(session: Session, issue_id: int, now: datetime) -> None:
    """The ``issue.sent`` webhook event, with what became of the issue's deliveries."""
    issue = session.get(Issue, issue_id)
    assert issue is not None
    counts = dict(
        session.execute(
            select(Delivery.status, func.count()).where(Delivery.issue_id == issue_id).group_by(Delivery.status)
        ).all()
    )
    data = {
        "issue": {"id": issue.id, "kind": issue.kind, "subject": issue.subject, "sent_at": now.isoformat()},
        "deliveries": {str(status): counts.get(status, 0) for status in DeliveryStatus},
    }
    emit(session, "issue.sent", data, None, now)
