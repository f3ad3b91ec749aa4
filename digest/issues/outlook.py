"""What an issue does to its audience, told before anything is confirmed: how many people it goes
to and how many summaries each of them gets ("5 recipients get 2 summaries, 2 get 6").

For an issue not yet planned the figures come from planning it for real inside a transaction that
is rolled back (the planner's own rules, nothing approximated); for one already planned they come
from its ledger. The preview page and every confirmation step (schedule, send now, pause, cancel)
show them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import DEFAULT_LOCALE
from digest.i18n import number, translations
from digest.issues.planning import audience, plan_campaign
from digest.issues.service import get_campaign
from digest.ledger.models import Delivery, DeliveryStatus, IssueStatus, SelectionItem
from digest.selection.service import PlanOptions
from digest.subscribers.models import Subscriber


@dataclass(frozen=True)
class Outlook:
    audience: int  # active, unsuppressed subscribers the issue is addressed to
    recipients: int  # of those, the ones who get a message (something to read)
    by_size: tuple[tuple[int, int], ...]  # (summaries per message, recipients), most recipients first
    planned: bool  # from the ledger (True) or from a rolled-back plan (False)

    @property
    def nothing(self) -> int:
        """Audience members who get no message: nothing pinned and nothing new for them."""
        return max(0, self.audience - self.recipients)

    def describe(self, locale: str = DEFAULT_LOCALE) -> str:
        """ "5 recipients get 2 summaries, 2 get 6" (every variant size, most common first), in ``locale``."""
        t = translations(locale)
        if not self.by_size:
            return t.gettext("nobody gets a message")
        (size, people), *rest = self.by_size
        summaries = t.ngettext("%(count)s summary", "%(count)s summaries", size) % {"count": number(size, locale)}
        first = t.ngettext(
            "%(people)s recipient gets %(summaries)s", "%(people)s recipients get %(summaries)s", people
        ) % {"people": number(people, locale), "summaries": summaries}
        others = [
            t.ngettext("%(people)s gets %(count)s", "%(people)s get %(count)s", p)
            % {"people": number(p, locale), "count": number(n, locale)}
            for n, p in rest
        ]
        return ", ".join([first, *others])


def _sizes(session: Session, issue_id: int, statuses: tuple[str, ...] | None = None) -> tuple[tuple[int, int], ...]:
    """(summaries per message, messages) over the issue's deliveries."""
    size = select(SelectionItem.selection_id, func.count().label("n")).group_by(SelectionItem.selection_id).subquery()
    stmt = (
        select(size.c.n, func.count(Delivery.id))
        .join(size, size.c.selection_id == Delivery.selection_id)
        .where(Delivery.issue_id == issue_id)
        .group_by(size.c.n)
    )
    if statuses:
        stmt = stmt.where(Delivery.status.in_(statuses))
    counts: Counter[int] = Counter(dict(session.execute(stmt).all()))
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def outlook(factory: sessionmaker[Session], issue_id: int, now: datetime, options: PlanOptions) -> Outlook:
    """The issue's audience and what each recipient gets (see the module docstring)."""
    session = factory()
    try:
        issue = get_campaign(session, issue_id)
        addressed = (
            session.scalar(select(func.count()).select_from(audience(issue.id, issue.audience_all).subquery())) or 0
        )
        if issue.status in (IssueStatus.DRAFT, IssueStatus.SCHEDULED):
            plan_campaign(session, issue, now, options)
            by_size = _sizes(session, issue.id)
            planned = False
        else:
            live = None if issue.status == IssueStatus.SENT else (DeliveryStatus.PENDING, DeliveryStatus.SENT)
            by_size = _sizes(session, issue.id, live)
            planned = True
        return Outlook(addressed, sum(people for _, people in by_size), by_size, planned)
    finally:
        session.rollback()
        session.close()


def in_audience(session: Session, issue_id: int, subscriber_id: int) -> bool:
    """Whether the issue is addressed to this subscriber (active, not suppressed, in its specialties)."""
    issue = get_campaign(session, issue_id)
    members = audience(issue.id, issue.audience_all).where(Subscriber.id == subscriber_id)
    return session.scalar(select(func.count()).select_from(members.subquery())) == 1
