"""Editor campaigns: compose drafts and move issues through their states.

States: draft -> scheduled -> sending -> sent, with paused (from sending, back by resume) and
cancelled (from any state before sent). Every move is one conditional UPDATE (compare and set), so
two editors or an editor and the scheduler racing on the same issue cannot both win; a move that
is not allowed raises IllegalTransition naming the issue, its state and what would be needed.

Send times are typed in an editor's local time and stored in UTC; ``digest.dispatch.send_due`` (the
planning task) starts scheduled issues whose time has passed. Nothing is queued with an ETA.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from digest.db import rowcount
from digest.editors.models import Editor
from digest.errors import Count, Explained, OneOf, Term
from digest.i18n import N_
from digest.ingest.models import Specialty, Summary
from digest.ingest.specialties import specialty_map
from digest.issues.models import IssuePin, issue_specialties
from digest.issues.planning import CampaignPlan, plan_campaign
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus
from digest.rendering.headers import clean, one_line
from digest.selection.service import PlanOptions
from digest.subscribers.schema import iana_timezones
from digest.untrusted import refuse_invisible

S = IssueStatus
# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[IssueStatus], IssueStatus]] = {
    "schedule": (frozenset({S.DRAFT}), S.SCHEDULED),
    "unschedule": (frozenset({S.SCHEDULED}), S.DRAFT),
    "start": (frozenset({S.DRAFT, S.SCHEDULED}), S.SENDING),
    "pause": (frozenset({S.SENDING}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.SENDING),
    "cancel": (frozenset({S.DRAFT, S.SCHEDULED, S.PAUSED, S.SENDING}), S.CANCELLED),
}
# Why an action was refused, one sentence per action (a verb on its own would not translate).
CANNOT = {
    "schedule": N_("cannot schedule issue %(id)s: it is %(current)s, and only a %(allowed)s issue can be"),
    "unschedule": N_("cannot unschedule issue %(id)s: it is %(current)s, and only a %(allowed)s issue can be"),
    "start": N_("cannot start issue %(id)s: it is %(current)s, and only a %(allowed)s issue can be"),
    "pause": N_("cannot pause issue %(id)s: it is %(current)s, and only a %(allowed)s issue can be"),
    "resume": N_("cannot resume issue %(id)s: it is %(current)s, and only a %(allowed)s issue can be"),
    "cancel": N_("cannot cancel issue %(id)s: it is %(current)s, and only a %(allowed)s issue can be"),
}
SCHEDULE_GRACE = timedelta(minutes=1)  # a send time this far in the past still counts as "now"
# The subject and preheader, once on one line: what the form's maxlength allows. Longer is refused,
# not cut, so an editor (or a script) never sends a subject other than the one they wrote.
HEADER_TEXT_LIMIT = 300


class IssueError(Explained):
    """An editor's request about an issue cannot be done; the message says why."""


class IssueNotFound(IssueError):
    pass


class InvalidIssue(IssueError):
    pass


class IllegalTransition(IssueError):
    pass


@dataclass(frozen=True)
class IssueDraft:
    subject: str
    preheader: str = ""
    intro: str = ""  # Markdown; rendered and sanitised at send time
    specialties: tuple[str, ...] = ()  # audience: these specialty slugs; empty = all subscribers
    pinned: tuple[str, ...] = ()  # summary ids every recipient gets first, in this order


def get_campaign(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None or issue.kind != IssueKind.CAMPAIGN:
        raise IssueNotFound(N_("there is no campaign issue %(id)s"), id=issue_id)
    return issue


def create_issue(session: Session, draft: IssueDraft, editor: Editor | None, now: datetime) -> Issue:
    """A new draft campaign."""
    issue = Issue(
        kind=IssueKind.CAMPAIGN,
        status=IssueStatus.DRAFT,
        subject="",
        editor_id=editor.id if editor else None,
        timezone=editor.timezone if editor else "UTC",
        created_at=now,
    )
    session.add(issue)
    session.flush()
    _apply(session, issue, draft)
    return issue


EDITABLE = frozenset({S.DRAFT, S.SCHEDULED})


def update_issue(session: Session, issue_id: int, draft: IssueDraft) -> Issue:
    """Replace the content of a draft or a scheduled issue (it stays scheduled for the same time).

    The row is locked first: a dispatcher starting the issue at that moment waits for the edit and
    plans the new content, or has started it already and the edit is refused.
    """
    get_campaign(session, issue_id)
    issue = session.scalar(
        select(Issue).where(Issue.id == issue_id).with_for_update().execution_options(populate_existing=True)
    )
    assert issue is not None
    if issue.status not in EDITABLE:
        raise IllegalTransition(
            N_("issue %(id)s is %(status)s; only a draft or a scheduled issue can be edited"),
            id=issue_id,
            status=Term(issue.status),
        )
    _apply(session, issue, draft)
    return issue


def draft_of(session: Session, issue: Issue) -> IssueDraft:
    """An issue's content as a draft (what ``duplicate_issue`` copies)."""
    slugs = tuple(
        session.scalars(
            select(Specialty.slug)
            .join(issue_specialties, issue_specialties.c.specialty_id == Specialty.id)
            .where(issue_specialties.c.issue_id == issue.id)
            .order_by(Specialty.slug)
        )
    )
    pins = tuple(
        session.scalars(select(IssuePin.summary_id).where(IssuePin.issue_id == issue.id).order_by(IssuePin.position))
    )
    return IssueDraft(issue.subject, issue.preheader, issue.intro, () if issue.audience_all else slugs, pins)


def duplicate_issue(session: Session, issue_id: int, editor: Editor | None, now: datetime) -> Issue:
    """A new draft with the content of any campaign (draft, scheduled or sent), its subject marked as a copy."""
    source = draft_of(session, get_campaign(session, issue_id))
    subject = source.subject if source.subject.startswith("Copy of ") else f"Copy of {source.subject}"
    return create_issue(session, replace(source, subject=subject[:300]), editor, now)


def delete_draft(session: Session, issue_id: int) -> None:
    """Delete a draft (with its audience and pins). Anything scheduled or sent stays: unschedule or
    cancel it instead, so the ledger keeps what went out."""
    get_campaign(session, issue_id)
    gone = session.execute(
        delete(Issue)
        .where(Issue.id == issue_id, Issue.status == IssueStatus.DRAFT)
        .execution_options(synchronize_session=False)
    )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise IllegalTransition(N_("issue %(id)s is not a draft; only drafts can be deleted"), id=issue_id)


def _apply(session: Session, issue: Issue, draft: IssueDraft) -> None:
    try:
        refuse_invisible(draft.subject, Term(N_("the subject")))
        refuse_invisible(draft.preheader, Term(N_("the preheader")))
    except Explained as exc:
        raise InvalidIssue.like(exc) from None
    for message, value in (
        (N_("the subject is %(length)s characters long; the limit is %(limit)s"), draft.subject),
        (N_("the preheader is %(length)s characters long; the limit is %(limit)s"), draft.preheader),
    ):
        length = len(clean(value))
        if length > HEADER_TEXT_LIMIT:
            raise InvalidIssue(message, length=Count(length), limit=Count(HEADER_TEXT_LIMIT))
    subject = one_line(draft.subject, HEADER_TEXT_LIMIT)
    if not subject:
        raise InvalidIssue(N_("the subject is empty"))
    known = specialty_map(session)
    unknown = [s for s in draft.specialties if s not in known]
    if unknown:
        raise InvalidIssue(N_("unknown specialty %(slugs)s"), slugs=", ".join(map(repr, unknown)))
    pinned = list(dict.fromkeys(draft.pinned))
    found = set(session.scalars(select(Summary.id).where(Summary.id.in_(pinned)))) if pinned else set()
    missing = [p for p in pinned if p not in found]
    if missing:
        raise InvalidIssue(N_("no summary with id %(ids)s to pin"), ids=", ".join(map(repr, missing)))
    issue.subject = subject
    issue.preheader = one_line(draft.preheader, HEADER_TEXT_LIMIT)
    issue.intro = draft.intro
    issue.audience_all = not draft.specialties
    session.execute(delete(issue_specialties).where(issue_specialties.c.issue_id == issue.id))
    if draft.specialties:
        session.execute(
            insert(issue_specialties),
            [{"issue_id": issue.id, "specialty_id": known[s].id} for s in dict.fromkeys(draft.specialties)],
        )
    session.execute(delete(IssuePin).where(IssuePin.issue_id == issue.id))
    for position, summary_id in enumerate(pinned, start=1):
        session.add(IssuePin(issue_id=issue.id, summary_id=summary_id, position=position))
    session.flush()


def local_to_utc(local: datetime, timezone: str) -> datetime:
    """An editor's wall-clock time in ``timezone`` as an aware UTC datetime.

    A time that does not exist (skipped when clocks go forward) is refused rather than guessed; an
    ambiguous one (clocks go back) means its first occurrence.
    """
    if timezone not in iana_timezones():
        raise InvalidIssue(
            N_("unknown time zone %(zone)s: use an IANA name such as Europe/Berlin"), zone=repr(timezone)
        )
    if local.tzinfo is not None:
        raise InvalidIssue(N_("give the send time as a local wall-clock time, without a UTC offset"))
    tz = ZoneInfo(timezone)
    aware = local.replace(tzinfo=tz)
    utc = aware.astimezone(ZoneInfo("UTC"))
    if utc.astimezone(tz).replace(tzinfo=None) != local:
        raise InvalidIssue(
            N_("%(time)s does not exist in %(zone)s (the clocks skip it)"),
            time=f"{local:%Y-%m-%d %H:%M}",
            zone=timezone,
        )
    return utc


def schedule_issue(session: Session, issue_id: int, local: datetime, timezone: str | None, now: datetime) -> Issue:
    """Schedule a draft for ``local`` time in ``timezone`` (default: the zone the issue was composed in)."""
    issue = get_campaign(session, issue_id)
    zone = timezone or issue.timezone
    at = local_to_utc(local, zone)
    if at < now - SCHEDULE_GRACE:
        raise InvalidIssue(N_("%(time)s %(zone)s is in the past"), time=f"{local:%Y-%m-%d %H:%M}", zone=zone)
    _transition(session, issue_id, "schedule", scheduled_at=at, timezone=zone)
    session.refresh(issue)
    return issue


def unschedule_issue(session: Session, issue_id: int) -> Issue:
    return _move(session, issue_id, "unschedule", scheduled_at=None)


def pause_issue(session: Session, issue_id: int) -> Issue:
    """Stop a sending issue: no further message goes out until it is resumed."""
    return _move(session, issue_id, "pause", paused_by=None, pause_reason=None)


def resume_issue(session: Session, issue_id: int) -> Issue:
    """Back to sending; the caller re-dispatches its open rows (``digest.dispatch.resume_campaign``)."""
    return _move(session, issue_id, "resume", paused_by=None, pause_reason=None)


def cancel_issue(session: Session, issue_id: int) -> Issue:
    """Cancel an issue before it is sent; rows not yet sent are cancelled with it."""
    issue = _move(session, issue_id, "cancel")
    session.execute(
        update(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, error="issue cancelled")
        .execution_options(synchronize_session=False)
    )
    return issue


def start_sending(session: Session, issue_id: int, now: datetime, options: PlanOptions) -> CampaignPlan:
    """Send a draft or scheduled issue now: move it to sending and plan its deliveries."""
    issue = get_campaign(session, issue_id)
    if not issue.subject:
        raise InvalidIssue(N_("issue %(id)s has no subject"), id=issue_id)
    _transition(session, issue_id, "start", planned_at=now)
    session.refresh(issue)
    return plan_campaign(session, issue, now, options)


def start_due_campaigns(session: Session, now: datetime, options: PlanOptions) -> list[CampaignPlan]:
    """Start every scheduled campaign whose send time has passed (called by dispatch_due)."""
    due = session.scalars(
        select(Issue.id).where(
            Issue.kind == IssueKind.CAMPAIGN, Issue.status == IssueStatus.SCHEDULED, Issue.scheduled_at <= now
        )
    ).all()
    plans = []
    for issue_id in due:
        try:
            with session.begin_nested():
                plans.append(start_sending(session, issue_id, now, options))
        except IllegalTransition:
            continue  # another dispatcher started it, or an editor unscheduled it, meanwhile
    return plans


def _move(session: Session, issue_id: int, action: str, **values: object) -> Issue:
    issue = get_campaign(session, issue_id)
    _transition(session, issue_id, action, **values)
    session.refresh(issue)
    return issue


def _transition(session: Session, issue_id: int, action: str, **values: object) -> None:
    sources, target = TRANSITIONS[action]
    result = session.execute(
        update(Issue)
        .where(Issue.id == issue_id, Issue.kind == IssueKind.CAMPAIGN, Issue.status.in_(sources))
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        current = session.scalar(select(Issue.status).where(Issue.id == issue_id))
        raise IllegalTransition(
            CANNOT[action],
            id=issue_id,
            current=Term(str(current)),
            allowed=OneOf(sorted(s.value for s in sources)),
        )
