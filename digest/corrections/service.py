"""Corrections: open one when a summary already sent changes materially, count its readers, let an
editor approve it, and plan it: a notice issue of its own (standalone) or a block folded into each
reader's next digest.

"Who received version k of summary S" is answered by the ledger: a sent delivery's ``variant_key``
names the rendered variant, and ``carried_versions`` the version of each summary that variant carried
and its edition. Readers are told once per correction: a standalone notice is one issue with one
delivery per (issue, subscriber) (the ledger's unique key), a folded one a row per (correction,
subscriber). Planning only addresses active, unsuppressed readers, and sending checks both again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from digest.corrections.models import Correction, CorrectionKind, CorrectionStatus, FoldedCorrection
from digest.errors import Explained, Term
from digest.i18n import N_
from digest.ingest.models import Summary, SummaryStatus, SummaryVersion
from digest.ingest.versions import Change, change_of
from digest.ledger.models import (
    CarriedVersion,
    Delivery,
    DeliveryStatus,
    Issue,
    IssueKind,
    IssueStatus,
    Selection,
    SelectionItem,
)
from digest.rendering import notices as wording
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression

# The states a correction can be in, as an error message names them (translated with it).
STATUS_WORDS = (N_("pending"), N_("approved"), N_("sent"), N_("dismissed"))


class CorrectionNotFound(Explained, LookupError):
    pass


class NotPending(Explained, ValueError):
    pass


def earlier_readers(summary_id: str, version: int) -> Select[int, str]:
    """(subscriber_id, edition) of everyone a sent delivery carried a version of the summary before
    ``version`` to (once per subscriber and edition)."""
    return (
        select(Delivery.subscriber_id, CarriedVersion.edition)
        .select_from(SelectionItem)
        .join(Delivery, Delivery.selection_id == SelectionItem.selection_id)
        .join(
            CarriedVersion,
            and_(CarriedVersion.variant_key == Delivery.variant_key, CarriedVersion.summary_id == summary_id),
        )
        .where(
            SelectionItem.summary_id == summary_id,
            Delivery.status == DeliveryStatus.SENT,
            CarriedVersion.version < version,
        )
        .distinct()
    )


def readers_by_edition(session: Session, correction: Correction) -> dict[str, int]:
    """How many readers who got an earlier version will be told, per edition they got it in (those
    who unsubscribed or were suppressed since are not counted: they are not told)."""
    readers = earlier_readers(correction.summary_id, correction.version).subquery()
    rows = session.execute(
        select(readers.c.edition, func.count(func.distinct(readers.c.subscriber_id)))
        .where(readers.c.subscriber_id.in_(_reachable(earlier_readers(correction.summary_id, correction.version))))
        .group_by(readers.c.edition)
    )
    return dict(rows.all())


def default_note(summary: Summary, change: Change) -> str:
    """What readers are told when the record gave no correction note (the editor may rewrite it),
    stored in English: each reader gets it in their locale (``digest.rendering.notices.localized_note``)."""
    return wording.default_note(summary.title, change.named_fields(), change.retracted)


def open_correction(session: Session, summary: Summary, version: SummaryVersion, now: datetime) -> int | None:
    """The correction a stored material version calls for (its id), if anyone got an earlier one: a
    pending correction of the same summary moves on to this version (and becomes standalone if this
    change is severe), otherwise a new one waits for approval. Cosmetic versions open nothing."""
    change = change_of(version)
    if not change.material:
        return None
    if not session.scalar(select(exists(earlier_readers(summary.id, version.version)))):
        return None
    retracted = version.status == SummaryStatus.RETRACTED
    kind = CorrectionKind.RETRACTION if retracted else CorrectionKind.CORRECTION
    note = version.note
    pending = session.scalar(
        select(Correction).where(Correction.summary_id == summary.id, Correction.status == CorrectionStatus.PENDING)
    )
    if pending is None:
        pending = Correction(
            summary_id=summary.id,
            created_at=now,
            status=CorrectionStatus.PENDING,
            standalone=change.severe,
            changed=change.in_words(),
            note=note or default_note(summary, change),
        )
        session.add(pending)
    else:
        pending.standalone = pending.standalone or change.severe
        words = {w for w in (pending.changed, change.in_words()) if w}
        pending.changed = "; ".join(sorted(words))
        if note or retracted:
            pending.note = note or default_note(summary, change)
    pending.version = version.version
    pending.kind = kind
    session.flush()
    return pending.id


def pending_corrections(session: Session) -> list[Correction]:
    return list(
        session.scalars(select(Correction).where(Correction.status == CorrectionStatus.PENDING).order_by(Correction.id))
    )


def get_correction(session: Session, correction_id: int) -> Correction:
    correction = session.get(Correction, correction_id)
    if correction is None:
        raise CorrectionNotFound(N_("no correction %(id)s"), id=correction_id)
    return correction


def approve(session: Session, correction_id: int, *, by: str, now: datetime, note: str | None = None) -> Correction:
    """Approve a pending correction (with the editor's wording, if given); the next send cycle sends it."""
    correction = get_correction(session, correction_id)
    if correction.status != CorrectionStatus.PENDING:
        raise NotPending(
            N_("correction %(id)s is %(status)s, not pending"), id=correction_id, status=Term(correction.status)
        )
    if note is not None and note.strip():
        correction.note = note.strip()
    correction.status = CorrectionStatus.APPROVED
    correction.approved_at = now
    correction.approved_by = by
    session.flush()
    return correction


def dismiss(session: Session, correction_id: int) -> Correction:
    correction = get_correction(session, correction_id)
    if correction.status != CorrectionStatus.PENDING:
        raise NotPending(
            N_("correction %(id)s is %(status)s, not pending"), id=correction_id, status=Term(correction.status)
        )
    correction.status = CorrectionStatus.DISMISSED
    session.flush()
    return correction


def _reachable(readers: Select[int, str]) -> Select[int]:
    """The readers still active and not suppressed (those who unsubscribed since are not told)."""
    found = readers.subquery()
    suppressed = select(Suppression.id).where(Suppression.value == func.lower(Subscriber.email))
    return select(Subscriber.id).where(
        Subscriber.id.in_(select(found.c.subscriber_id)),
        Subscriber.status == SubscriberStatus.ACTIVE,
        ~exists(suppressed),
    )


NOTICE_SUBJECTS = {
    CorrectionKind.CORRECTION: wording.CORRECTION_SUBJECT,
    CorrectionKind.RETRACTION: wording.RETRACTION_SUBJECT,
}


@dataclass(frozen=True)
class PlannedCorrection:
    correction_id: int
    issue_id: int | None  # the notice issue (standalone), to dispatch
    readers: int


def plan_approved(session: Session, now: datetime) -> list[PlannedCorrection]:
    """Plan every approved correction: a notice issue (sending) for standalone ones, folded rows
    for the others; each is then ``sent`` and never planned again."""
    planned = []
    approved = session.scalars(
        select(Correction).where(Correction.status == CorrectionStatus.APPROVED).order_by(Correction.id)
    ).all()
    for correction in approved:
        summary = session.get(Summary, correction.summary_id)
        assert summary is not None  # corrections are deleted with their summary
        readers = _reachable(earlier_readers(correction.summary_id, correction.version))
        if correction.standalone:
            # Stored in English; each reader's copy is in their locale (digest/rendering/notices.py).
            subject = NOTICE_SUBJECTS[CorrectionKind(correction.kind)] % {"title": summary.title}
            issue_id, count = start_notice(
                session, IssueKind.CORRECTION, subject, correction.note, summary, readers, now
            )
            correction.issue_id = issue_id
        else:
            issue_id = None
            session.execute(
                insert(FoldedCorrection).from_select(
                    ["correction_id", "subscriber_id", "created_at"],
                    select(
                        literal(correction.id), readers.subquery().c.id, literal(now, FoldedCorrection.created_at.type)
                    ),
                )
            )
            count = _count(session, select(FoldedCorrection).where(FoldedCorrection.correction_id == correction.id))
        correction.status = CorrectionStatus.SENT
        planned.append(PlannedCorrection(correction.id, issue_id, count))
    session.flush()
    return planned


def notice_key(kind: IssueKind, summary: Summary) -> str:
    """The key of a notice's one list: the kind, summary and version it is about."""
    return f"{kind}:{summary.id}:v{summary.version}"


def start_notice(
    session: Session,
    kind: IssueKind,
    subject: str,
    note: str,
    summary: Summary,
    recipients: Select[int],
    now: datetime,
) -> tuple[int, int]:
    """A notice issue (a correction or a safety alert) about one summary, sending at once, with a
    pending delivery for each of ``recipients`` (a select of subscriber ids): (issue id, deliveries).
    The note is the issue's ``intro``, shown as plain text above the summary."""
    issue = Issue(kind=kind, status=IssueStatus.SENDING, subject=subject[:300], intro=note, planned_at=now)
    session.add(issue)
    session.flush()
    selection = Selection(issue_id=issue.id, key=notice_key(kind, summary))
    session.add(selection)
    session.flush()
    session.add(SelectionItem(selection_id=selection.id, summary_id=summary.id, position=1))
    ids = recipients.subquery()
    session.execute(
        insert(Delivery).from_select(
            ["issue_id", "subscriber_id", "status", "variant_key", "attempts", "created_at", "selection_id"],
            select(
                literal(issue.id),
                ids.c.id,
                literal(DeliveryStatus.PENDING.value),
                literal(""),
                literal(0),
                literal(now, Delivery.created_at.type),
                literal(selection.id),
            ),
        )
    )
    count = _count(session, select(Delivery).where(Delivery.issue_id == issue.id))
    if not count:
        issue.status = IssueStatus.SENT
        issue.sent_at = now
    session.flush()
    return issue.id, count


def _count(session: Session, rows: Select[Any]) -> int:
    """Rows of a select (an INSERT ... SELECT's rowcount is not reported on every driver)."""
    return session.scalar(select(func.count()).select_from(rows.subquery())) or 0


_FOLDED = (
    select(FoldedCorrection.subscriber_id, Correction.id, Correction.kind, Correction.note, Summary.title)
    .join(Correction, Correction.id == FoldedCorrection.correction_id)
    .join(Summary, Summary.id == Correction.summary_id)
    .where(FoldedCorrection.delivery_id.is_(None))
    .order_by(FoldedCorrection.subscriber_id, Correction.id)
)


def folded_for(session: Session, subscriber_ids: Sequence[int]) -> dict[int, tuple[dict[str, Any], ...]]:
    """subscriber id -> the folded corrections their next digest shows at the top (not yet carried)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for subscriber_id, correction_id, kind, note, title in session.execute(
        _FOLDED.where(FoldedCorrection.subscriber_id.in_(list(set(subscriber_ids))))
    ):
        out.setdefault(subscriber_id, []).append({"id": correction_id, "kind": kind, "note": note, "title": title})
    return {k: tuple(v) for k, v in out.items()}


def mark_folded_carried(session: Session, carried: dict[int, tuple[int, list[int]]]) -> None:
    """Record the digest that carried each folded correction (delivery id -> (subscriber, corrections)),
    in the transaction that records the message as sent: shown once."""
    rows = [
        {"d": delivery_id, "s": subscriber_id, "c": correction_id}
        for delivery_id, (subscriber_id, ids) in carried.items()
        for correction_id in ids
    ]
    # Through the connection: a plain executemany, not the ORM's bulk update by primary key.
    session.connection().execute(
        update(FoldedCorrection)
        .where(
            FoldedCorrection.subscriber_id == bindparam("s"),
            FoldedCorrection.correction_id == bindparam("c"),
            FoldedCorrection.delivery_id.is_(None),
        )
        .values(delivery_id=bindparam("d")),
        rows,
    )
