"""The public archive: the web version of each campaign that went out ("view in browser").

The web version has no personal data: the same templates, rendered with neutral recipient values
(greeting "Hello,", links to the public sign-up page), no tokens and untracked item links. It shows
the pinned summaries, then every other summary the issue carried to anyone, ranked as in a digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from digest.ingest.models import Summary
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
    return [ArchiveEntry(i, subject, sent_at, f"{base_url.rstrip('/')}/issues/{i}") for i, subject, sent_at in rows]


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
