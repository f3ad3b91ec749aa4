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
window is one batch, and so is the time a worker holds row locks while it talks to the server.

What failed decides the rest (``Failure`` in digest/delivery/transport.py): a recipient failure
fails the row and suppresses the address, a message failure fails the row only, a temporary one
puts it back to pending and counts the attempt. Throttling and connection failures say nothing about
the message: the attempt is not counted, the rest of the chunk is not tried, and the chunk is handed
back (throttled: after the wait every worker now observes) or the transport circuit opens and the
sending issues pause (digest/delivery/circuit.py). A chunk whose database connection is lost
(``pg_terminate_backend``, a failover) hands its unfinished rows back at once (``requeue``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, TextClause, bindparam, cast, exists, func, null, select, text, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from digest.corrections.service import folded_for, mark_folded_carried
from digest.db import ArrayLiteral, InList, UTCDateTime, rowcount, session_scope
from digest.delivery.circuit import Circuit
from digest.delivery.summary_cache import SummaryCache
from digest.delivery.transport import NOT_COUNTED, Failure, SendResult, Transport, TransportError
from digest.ingest.models import Specialty, Summary
from digest.integrations.webhooks import emit
from digest.ledger.carried import summaries_by_selection
from digest.ledger.models import CarriedVersion, Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus, Selection
from digest.rendering.compiled import Variant
from digest.rendering.compose import Addressee, MessageComposer, build_variant
from digest.rendering.intro import render_intro
from digest.rendering.message import OutgoingMessage
from digest.selection.picker import key_specialty_ids
from digest.subscribers.models import (
    Subscriber,
    SubscriberStatus,
    Suppression,
    subscriber_specialties,
)
from digest.subscribers.relevance import relevance_line
from digest.subscribers.suppression import suppress_bounce, suppression_keys

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# "Its issue is still sending", checked per row of the batch. Written as a correlated scalar subquery,
# not ``issue_id IN (sending issues)``: PostgreSQL can turn an IN around and start from the sending
# issue, and on a ledger with history (statistics that see almost no pending row) it does, reading
# every pending row of the issue through ix_deliveries_issue_status for each batch of 25: O(list)
# per batch, O(list²) per send. A subquery it cannot flatten keeps the batch's ids as the way in.
_ISSUE_SENDING = select(Issue.status).where(Issue.id == Delivery.issue_id).scalar_subquery() == IssueStatus.SENDING
_ISSUE_SENDING_SQL = f"(SELECT status FROM issues WHERE issues.id = deliveries.issue_id) = '{IssueStatus.SENDING}'"
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
        Subscriber.min_evidence_level,
        Subscriber.study_types,
        Subscriber.max_items,
        Subscriber.locale,
    )
    .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
    .where(InList(Delivery.id, "ids"), Delivery.status == DeliveryStatus.PENDING, _ISSUE_SENDING)
    .order_by(Delivery.id)
)
_SPECIALTIES_OF = (
    select(subscriber_specialties.c.subscriber_id, Specialty.slug, Specialty.name)
    .join(Specialty, Specialty.id == subscriber_specialties.c.specialty_id)
    .where(InList(subscriber_specialties.c.subscriber_id, "subscriber_ids"))
)
_SELECTION_KEYS = select(Selection.id, Selection.key).where(InList(Selection.id, "selection_ids"))
_SPECIALTY_NAMES = select(Specialty.id, Specialty.slug, Specialty.name)


class RateLimiter(Protocol):
    """The global send rate (digest/delivery/ratelimit.py): slowed when the transport throttles,
    raised again as messages are accepted."""

    def acquire(self, count: int) -> None:
        """Block until ``count`` messages may be sent."""

    def succeeded(self, count: int) -> None:
        """``count`` messages were accepted."""

    def slow_down(self, transport: str, quiet: float) -> float | None:
        """The transport throttled (every worker now waits ``quiet`` seconds): cut the rate; returns it."""

    def current(self) -> float | None:
        """Messages per second now allowed; None: unlimited."""


class Unlimited:
    """No shared rate (no Redis): a throttle only holds every worker back (the circuit's wait)."""

    def acquire(self, count: int) -> None:
        return None

    def succeeded(self, count: int) -> None:
        return None

    def slow_down(self, transport: str, quiet: float) -> float | None:
        return None

    def current(self) -> float | None:
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
    retry: list[int] = field(default_factory=list)  # temporary failures, back to pending (an attempt spent)
    throttled: list[int] = field(default_factory=list)  # back to pending untried: hand over after ``wait``
    wait: float = 0.0  # seconds the transport asked every worker to hold back
    paused: str | None = None  # the transport circuit is open (why): rows left pending, issues paused
    requeue: list[int] = field(default_factory=list)  # the database connection was lost: hand over at once
    messages: list[OutgoingMessage] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    delivery_id: int
    issue_id: int
    who: Addressee
    summary_ids: tuple[str, ...]
    folded: tuple[dict[str, Any], ...] = ()  # corrections shown at the top of this digest (digest/corrections)


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
        circuit: Circuit | None = None,
        pinned_of: PinnedLookup | None = None,
    ):
        self.sessions = session_factory
        self.pinned_of = pinned_of
        self.composer = composer
        self.transport = transport
        self.clock = clock
        self.limiter = limiter or Unlimited()
        self.recorder = recorder or NotRecorded()
        self.keep_messages = keep_messages
        self.summaries = SummaryCache()
        self.circuit = circuit or Circuit(session_factory, transport.name, clock)
        self._specialty_names: dict[int, tuple[str, str]] | None = None
        self._recorded: set[str] = set()  # variant keys whose carried versions this process wrote

    # -- 1. load --------------------------------------------------------------------------------
    def _load(
        self, session: Session, ids: Sequence[int]
    ) -> tuple[list[_Row], dict[str, Summary], dict[int, dict[str, Any]]]:
        """The chunk's rows still to send (pending, issue sending), with their summaries and issues."""
        rows = session.execute(_PENDING_ROWS, {"ids": list(ids)}).all()
        if not rows:
            return [], {}, {}
        selection_ids = list({r[2] for r in rows if r[2] is not None})
        lists = summaries_by_selection(session, selection_ids)
        specialties: dict[int, dict[str, str]] = defaultdict(dict)
        for sid, slug, name in session.execute(_SPECIALTIES_OF, {"subscriber_ids": list({r[3] for r in rows})}):
            specialties[sid][slug] = name
        chosen_for = self._chosen_for(session, selection_ids)
        wanted = list({s for ids_ in lists.values() for s in ids_})
        summaries = self.summaries.get(session, wanted)
        issues = issue_contexts(session, {r[1] for r in rows}, self.composer.base_url, self.pinned_of)
        readers = [r[3] for r in rows if not issues[r[1]].get("notice")]  # notices carry no folded block
        folded = folded_for(session, readers) if readers else {}
        # The "why" lines and the heading name what the list was chosen for: a reader who changed
        # specialties after planning gets the list planned for the old ones, under the old heading.
        out = [
            _Row(
                d_id,
                issue_id,
                Addressee(
                    sid,
                    email,
                    name,
                    edition,
                    chosen_for.get(selection_id) or specialties[sid],
                    relevance_line(level, types, cap, locale),
                    locale,
                ),
                tuple(lists.get(selection_id, ()) if selection_id is not None else ()),
                () if issues[issue_id].get("notice") else folded.get(sid, ()),
            )
            for d_id, issue_id, selection_id, sid, email, name, edition, level, types, cap, locale in rows
        ]
        return out, summaries, issues

    def _chosen_for(self, session: Session, selection_ids: list[int]) -> dict[int | None, dict[str, str]]:
        """selection id -> the specialties (slug -> name) it was chosen for, from its key."""
        if not selection_ids:
            return {}
        keys = {
            sid: key_specialty_ids(key)
            for sid, key in session.execute(_SELECTION_KEYS, {"selection_ids": selection_ids})
        }
        wanted = {i for ids in keys.values() for i in ids}
        if self._specialty_names is None or not wanted <= self._specialty_names.keys():
            # A small table, read again only when a specialty appears that this process has not seen.
            self._specialty_names = {i: (slug, name) for i, slug, name in session.execute(_SPECIALTY_NAMES)}
        names = self._specialty_names
        return {sid: dict(names[i] for i in ids if i in names) for sid, ids in keys.items()}

    # -- the whole chunk -----------------------------------------------------------------------
    def deliver(self, ids: Sequence[int]) -> DeliverReport:
        report = DeliverReport()
        done: set[int] = set()  # ids whose outcome is committed (or that need nothing)
        try:
            self._deliver(ids, report, done)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The database went away under us (killed backend, failover): what this chunk had not
            # finished is handed back now rather than when the lease runs out. The batch in flight
            # was rolled back; taking each row once makes a second look at the others harmless.
            report.requeue = [i for i in ids if i not in done]
            log.warning("database connection lost; %d deliveries handed back: %s", len(report.requeue), exc.orig)
        return report

    def _deliver(self, ids: Sequence[int], report: DeliverReport, done: set[int]) -> None:
        with session_scope(self.sessions) as session:
            circuit = self.circuit.view(session)
            rows, summaries, issues = self._load(session, ids) if not circuit.open else ([], {}, {})
        if circuit.open:
            assert circuit.reason is not None
            self.circuit.open(circuit.reason)  # issues planned or resumed meanwhile wait too
            report.paused = circuit.reason
            return
        done.update(set(ids) - {r.delivery_id for r in rows})
        report.skipped = len(set(ids)) - len(rows)
        if circuit.throttled_for > 0:
            report.throttled, report.wait = [r.delivery_id for r in rows], circuit.throttled_for
            return
        if not rows:
            return
        sendable: list[tuple[_Row, Variant]] = []
        variant_keys: dict[int, str] = {}
        variants: dict[tuple[Any, ...], Variant] = {}  # rows with the same selection share one
        folded: dict[int, tuple[int, list[int]]] = {}  # delivery id -> (subscriber id, folded correction ids)
        for row in rows:
            shape = (
                row.issue_id,
                row.who.edition,
                row.summary_ids,
                tuple(sorted(row.who.specialties.items())),
                row.who.relevance,
                row.who.locale,
                tuple(c["id"] for c in row.folded),
            )
            variant = variants.get(shape)
            if variant is None:
                present = [summaries[s] for s in row.summary_ids if s in summaries]
                issue = issues[row.issue_id]
                if row.folded:
                    issue = {**issue, "corrections": list(row.folded)}
                variant = variants[shape] = build_variant(
                    row.who.edition,
                    present,
                    row.who.specialties,
                    issue,
                    relevance=row.who.relevance,
                    locale=row.who.locale,
                )
            if row.folded:
                folded[row.delivery_id] = (row.who.subscriber_id, [c["id"] for c in row.folded])
            if not variant.items:
                continue  # every summary was withdrawn since planning: cancelled below
            variant_keys[row.delivery_id] = variant.key
            sendable.append((row, variant))
        self._record_versions(variants.values())
        empty = [r.delivery_id for r in rows if r.delivery_id not in variant_keys]
        if empty:
            report.cancelled += self._cancel(empty, "no summaries left to send")
            done.update(empty)
        # Composed a transport batch at a time: a chunk's messages are never all held at once.
        now = self.clock()
        size = max(1, self.transport.batch_size)
        for start in range(0, len(sendable), size):
            batch = [
                self.composer.compose(r.delivery_id, r.issue_id, r.who, v, now)
                for r, v in sendable[start : start + size]
            ]
            stop = self._send_batch(batch, variant_keys, report, folded)
            done.update(m.delivery_id for m in batch)
            if stop is not None:
                rest = [r.delivery_id for r, _ in sendable[start + size :]]
                self._stop(stop, rest, report)
                break
        for issue_id in {r.issue_id for r in rows}:
            finish_issue_if_done(self.sessions, issue_id, self.clock())

    def _stop(self, stop: SendResult, rest: list[int], report: DeliverReport) -> None:
        """After a throttling or connection failure the rest of the chunk is not tried: it waits
        for the throttle to pass, or for the circuit (now open) to close."""
        if stop.failure == Failure.CONNECTION:
            self.circuit.open(stop.error or "connection failed")
            report.paused = stop.error
        else:
            report.wait = self.circuit.throttle(stop.retry_after)
            self.limiter.slow_down(self.transport.name, report.wait)
            report.throttled += rest

    def _record_versions(self, variants: Iterable[Variant]) -> None:
        """Write which version of each summary the variants carry, before any message of theirs is
        sent (a variant's key is stored on the deliveries it served): the ledger's answer to "who
        received version k" (digest/corrections/service.py). Once per variant and process."""
        new = [v for v in variants if v.items and v.key not in self._recorded]
        if not new:
            return
        # In key order: two chunks of one send record the same variants at the same moment, and
        # rows inserted in different orders deadlock (each waits for a key the other inserted first).
        rows = sorted(
            (
                {"variant_key": v.key, "summary_id": item["id"], "version": item["version"] or 1, "edition": v.edition}
                for v in new
                for item in v.items
            ),
            key=lambda row: (row["variant_key"], row["summary_id"]),
        )
        with session_scope(self.sessions) as session:
            dialect = session.get_bind().dialect.name
            module = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
            session.execute(module.insert(CarriedVersion).on_conflict_do_nothing(), rows)
        if len(self._recorded) > 100_000:
            self._recorded.clear()
        self._recorded.update(v.key for v in new)

    def _cancel(self, ids: Sequence[int], reason: str) -> int:
        with session_scope(self.sessions) as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.CANCELLED, error=reason)
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)

    def _send_batch(
        self,
        batch: list[OutgoingMessage],
        variant_keys: dict[int, str],
        report: DeliverReport,
        folded: dict[int, tuple[int, list[int]]],
    ) -> SendResult | None:
        """Take, send and record one batch in one transaction; returns the throttling or connection
        failure that stops the chunk, if one came back."""
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
            stop = self._send(session, sendable, corrections, report) if sendable else None
            corrections.write(session)
            failed = {row["id"] for rows in corrections.rows.values() for row in rows if "status" in row}
            carried = {d: folded[d] for d in taken if d in folded and d not in failed and d not in blocked}
            if carried:
                mark_folded_carried(session, carried)
        return stop

    def _send(
        self, session: Session, sendable: list[OutgoingMessage], corrections: _Corrections, report: DeliverReport
    ) -> SendResult | None:
        """Hand the messages to the transport and correct the rows whose outcome was not ``sent``
        under their own Message-ID (written before the commit); returns the first throttling or
        connection failure."""
        self.limiter.acquire(len(sendable))
        started = time.perf_counter()
        try:
            results = self.transport.send(sendable)
        except TransportError as exc:
            log.warning("transport %s failed for a batch of %d: %s", self.transport.name, len(sendable), exc)
            results = [SendResult.untried(m.delivery_id, exc) for m in sendable]
        self.recorder.record(self.transport.name, time.perf_counter() - started, results)
        self.limiter.succeeded(sum(1 for r in results if r.accepted))
        by_id = {m.delivery_id: m for m in sendable}
        temporary = [r for r in results if r.failure == Failure.TEMPORARY]
        attempts = self._attempts(session, [r.delivery_id for r in temporary]) if temporary else {}
        stop = next((r for r in results if r.failure in NOT_COUNTED), None)
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
                if result.bounce:  # and the "bounced" webhook event
                    suppress_bounce(
                        session,
                        msg.to_email,
                        result.error,
                        self.clock(),
                        delivery_id=result.delivery_id,
                        provider=self.transport.name,
                    )
                report.failed += 1
            elif result.failure in NOT_COUNTED:
                corrections.add(result.delivery_id, DeliveryStatus.PENDING, result.error, untried=True)
                if result.failure == Failure.THROTTLED:
                    report.throttled.append(result.delivery_id)
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
        return stop

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
        f"AND {_ISSUE_SENDING_SQL} "
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
        self.untried: list[int] = []

    def add(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        error: str | None,
        *,
        message_id: str | None = None,
        untried: bool = False,
    ) -> None:
        """Not sent: failed (keeps the Message-ID it was tried under), cancelled, or back to pending.
        ``untried``: the transport never judged the message, so taking it spent no attempt."""
        if untried:
            self.untried.append(delivery_id)
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
        if self.untried:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(self.untried))
                .values(attempts=Delivery.attempts - 1)
                .execution_options(synchronize_session=False)
            )


# The pinned summaries of each issue (issue id -> summary ids in order); supplied by the campaign
# layer above (digest.issues.planning.pinned_by_issue, through wiring): pins are an editor's choice.
PinnedLookup = Callable[[Session, set[int]], Mapping[int, Sequence[str]]]


def issue_contexts(
    session: Session, issue_ids: Iterable[int], base_url: str, pinned_of: PinnedLookup | None = None
) -> dict[int, dict[str, Any]]:
    """``issue_context`` of each issue, with its pinned summaries when ``pinned_of`` is given."""
    issue_ids = set(issue_ids)
    pins = pinned_of(session, issue_ids) if pinned_of is not None else {}
    return {
        i.id: issue_context(i, base_url, pins.get(i.id, ()))
        for i in session.scalars(select(Issue).where(Issue.id.in_(issue_ids)))
    }


def issue_context(issue: Issue, base_url: str, pinned: Sequence[str] = ()) -> dict[str, Any]:
    """What the templates need of an issue (plain data, part of the variant key).

        Campaigns carry their sanitised intro, a "view in browser" link to the public archive and the
        editor's pinned summaries (labelled "Editor's pick"); cadence digests are personal mixes with
        neither. Item links of both are tracked (``/r/``), so the dashboard counts clicks per summary and
        per link for digest runs as for campaigns. ``date`` (ISO, "2026-12-05") goes into digest subjects,
    written in the reader's locale ("5 Dec") by the template. Notices
        (corrections, safety alerts) carry their subject and note.
    """
    when = issue.planned_at or issue.scheduled_at or issue.created_at
    campaign = issue.kind == IssueKind.CAMPAIGN
    notice = issue.kind in (IssueKind.CORRECTION, IssueKind.ALERT)
    intro_html, intro_text = render_intro(issue.intro) if campaign else ("", "")
    return {
        "id": issue.id,
        "subject": issue.subject if campaign or notice else "",
        # Correction notices and safety alerts: their kind and note (plain text), above the summary.
        "notice": {"kind": issue.kind, "note": issue.intro} if notice else None,
        "preheader": issue.preheader,
        "intro_html": intro_html,
        "intro_text": intro_text,
        "web_url": f"{base_url.rstrip('/')}/issues/{issue.id}" if campaign else "",
        "track_clicks": True,
        "pinned": list(pinned) if campaign else [],
        "date": when.date().isoformat() if when is not None else "",
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
