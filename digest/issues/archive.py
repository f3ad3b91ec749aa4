"""The public archive: the web version of each campaign that went out ("view in browser").

The web version has no personal data: the same templates, rendered with neutral recipient values
(greeting "Hello,", links to the public sign-up page), no tokens and untracked item links. It shows
the pinned summaries, then every other summary the issue carried to anyone, ranked as in a digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from digest.ingest.models import Summary, SummaryStatus
from digest.issues.planning import pinned_ids
from digest.issues.preview import neutral_recipient, render_items, untracked_context
from digest.issues.service import IssueNotFound
from digest.ledger.carried import carried
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind
from digest.rendering.compiled import EmailRenderer
from digest.rendering.personalisation import RenderedEmail
from digest.selection.picker import RANKING
from digest.subscribers.models import Edition

MAX_WEB_ITEMS = 50


@dataclass(frozen=True)
class ArchiveEntry:
    id: int
    subject: str
    sent_at: datetime | None
    url: str
    corrected: int = 0  # summaries it carried that were corrected since
    retracted: int = 0  # ... or retracted


def _published() -> ColumnElement[bool]:
    """An issue is in the archive once at least one of its messages went out."""
    return exists(select(Delivery.id).where(Delivery.issue_id == Issue.id, Delivery.status == DeliveryStatus.SENT))


def archive(session: Session, base_url: str) -> list[ArchiveEntry]:
    """Published campaigns, newest first (``GET /issues``)."""
    rows = session.execute(
        select(Issue.id, Issue.subject, Issue.sent_at)
        .where(Issue.kind == IssueKind.CAMPAIGN, _published())
        .order_by(Issue.planned_at.desc(), Issue.id.desc())
    ).all()
    marks = _marks(session, [i for i, _, _ in rows])
    return [
        ArchiveEntry(i, subject, sent_at, f"{base_url.rstrip('/')}/issues/{i}", **marks.get(i, {}))
        for i, subject, sent_at in rows
    ]


def _marks(session: Session, issue_ids: list[int]) -> dict[int, dict[str, int]]:
    """issue id -> how many summaries it carried are now corrected / retracted."""
    if not issue_ids:
        return {}
    sent = carried().where(Delivery.issue_id.in_(issue_ids), Delivery.status == DeliveryStatus.SENT)
    pairs = sent.add_columns(Delivery.issue_id.label("issue_id")).subquery()
    rows = session.execute(
        select(pairs.c.issue_id, Summary.status, func.count(func.distinct(Summary.id)))
        .join(Summary, Summary.id == pairs.c.summary_id)
        .where(Summary.status.in_((SummaryStatus.CORRECTED, SummaryStatus.RETRACTED)))
        .group_by(pairs.c.issue_id, Summary.status)
    )
    out: dict[int, dict[str, int]] = {}
    for issue_id, status, count in rows:
        out.setdefault(issue_id, {})[status] = count
    return out


def web_version(session: Session, renderer: EmailRenderer, issue_id: int) -> RenderedEmail:
    """The web version of a published campaign (``GET /issues/{id}``); IssueNotFound otherwise."""
    issue = session.scalar(select(Issue).where(Issue.id == issue_id, Issue.kind == IssueKind.CAMPAIGN, _published()))
    if issue is None:
        raise IssueNotFound(f"issue {issue_id} is not in the archive")
    pins = pinned_ids(session, issue.id)
    sent = carried().where(Delivery.issue_id == issue.id, Delivery.status == DeliveryStatus.SENT).subquery()
    others = session.scalars(
        select(Summary.id)
        .where(Summary.id.in_(select(sent.c.summary_id)), Summary.id.not_in(pins))
        .order_by(*RANKING)
        .limit(MAX_WEB_ITEMS)
    ).all()
    context = {**untracked_context(issue, renderer.base_url), "web_url": ""}
    return render_items(
        session, renderer, context, [*pins, *others], Edition.CLINICIAN.value, {}, neutral_recipient(renderer.base_url)
    )
