"""See an issue before it goes out: render it as one specialty or one subscriber would get it, list
the audiences that would get nothing, and send a test copy to any address.

Previews go through the same templates and renderer as real sends, with neutral links (no tokens
of any subscriber) and untracked item links. Nothing here writes to the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from digest.config import DEFAULT_LOCALE
from digest.delivery.service import issue_context
from digest.delivery.transport import Transport
from digest.i18n import N_
from digest.ingest.models import Specialty, Summary, summary_specialties
from digest.issues.models import issue_specialties
from digest.issues.planning import audience, pinned_ids
from digest.issues.service import InvalidIssue, IssueError, get_campaign
from digest.ledger.models import Issue
from digest.rendering.compiled import EmailRenderer
from digest.rendering.compose import MessageComposer, build_variant
from digest.rendering.message import OutgoingMessage
from digest.rendering.personalisation import Recipient, RenderedEmail
from digest.selection.picker import RANKING, has_candidate, ranked_candidates
from digest.selection.service import PlanOptions
from digest.subscribers.models import Edition, Subscriber, subscriber_specialties
from digest.subscribers.schema import InvalidAddress, normalize_email

TEST_PREFIX = "[Test] "


class TestSendFailed(IssueError):
    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class EmptyAudience:
    """Subscribers of one audience specialty whose digest would be empty (so they get no email)."""

    specialty: str  # slug
    subscribers: int


@dataclass(frozen=True)
class Preview:
    subject: str
    html: str
    text: str
    items: tuple[str, ...]  # summary ids, in order
    empty: tuple[EmptyAudience, ...]


def neutral_recipient(base_url: str, email: str = "subscribers", name: str = "", web_url: str = "") -> Recipient:
    """Recipient values that identify nobody: links lead to the public sign-up page ("view in
    browser" to ``web_url`` when given: a preview's, to the issue's archive page)."""
    home = base_url.rstrip("/") + "/"
    return Recipient(email=email, name=name, unsubscribe_url=home, preferences_url=home, web_url=web_url or home)


def untracked_context(issue: Issue, base_url: str) -> dict[str, Any]:
    return {**issue_context(issue, base_url), "track_clicks": False}


def items_for_subscriber(
    session: Session, issue: Issue, subscriber_id: int, now: datetime, options: PlanOptions
) -> list[str]:
    """What planning would give this subscriber now: the pins, then their own ranked new summaries."""
    pins = pinned_ids(session, issue.id)
    ranked = ranked_candidates(now, timedelta(days=options.lookback_days), select(literal(subscriber_id)))
    new = [s for s in session.scalars(select(ranked.c.summary_id).order_by(ranked.c.rank)) if s not in pins]
    return pins + new[: max(0, options.max_items - len(pins))]


def items_for_specialty(session: Session, issue: Issue, slug: str, now: datetime, options: PlanOptions) -> list[str]:
    """A representative subscriber of one specialty: the pins, then that specialty's new summaries."""
    pins = pinned_ids(session, issue.id)
    lookback = timedelta(days=options.lookback_days)
    new = session.scalars(
        select(Summary.id)
        .join(summary_specialties, summary_specialties.c.summary_id == Summary.id)
        .join(Specialty, Specialty.id == summary_specialties.c.specialty_id)
        .where(
            Specialty.slug == slug,
            Summary.published_at <= now,
            Summary.published_at > now - lookback,
            Summary.id.not_in(pins),
        )
        .order_by(*RANKING)
        .limit(max(0, options.max_items - len(pins)))
    ).all()
    return pins + list(new)


def empty_audiences(session: Session, issue: Issue, now: datetime, options: PlanOptions) -> list[EmptyAudience]:
    """Per audience specialty, how many subscribers would get nothing (no pins, nothing new)."""
    if pinned_ids(session, issue.id):
        return []
    lookback = timedelta(days=options.lookback_days)
    nothing = audience(issue.id, issue.audience_all).where(~has_candidate(now, lookback))
    stmt = (
        select(Specialty.slug, func.count(subscriber_specialties.c.subscriber_id))
        .join(subscriber_specialties, subscriber_specialties.c.specialty_id == Specialty.id)
        .where(subscriber_specialties.c.subscriber_id.in_(nothing))
        .group_by(Specialty.slug)
        .order_by(Specialty.slug)
    )
    if not issue.audience_all:
        stmt = stmt.where(
            Specialty.id.in_(select(issue_specialties.c.specialty_id).where(issue_specialties.c.issue_id == issue.id))
        )
    rows = session.execute(stmt).all()
    return [EmptyAudience(slug, count) for slug, count in rows]


def preview_issue(
    session: Session,
    renderer: EmailRenderer,
    issue_id: int,
    now: datetime,
    options: PlanOptions,
    *,
    specialty: str | None = None,
    subscriber_id: int | None = None,
) -> Preview:
    """Render the issue as ``specialty`` or as subscriber ``subscriber_id`` would get it (one of the two)."""
    if (specialty is None) == (subscriber_id is None):
        raise InvalidIssue(N_("preview as one specialty or one subscriber"))
    issue = get_campaign(session, issue_id)
    archive_url = f"{renderer.base_url}/issues/{issue.id}"
    if subscriber_id is not None:
        sub = session.get(Subscriber, subscriber_id)
        if sub is None:
            raise InvalidIssue(N_("there is no subscriber %(id)s"), id=subscriber_id)
        ids = items_for_subscriber(session, issue, sub.id, now, options)
        edition, specialties = sub.edition, {s.slug: s.name for s in sub.specialties}
        recipient = neutral_recipient(renderer.base_url, sub.email, sub.name, archive_url)
    else:
        spec = session.scalar(select(Specialty).where(Specialty.slug == specialty))
        if spec is None:
            raise InvalidIssue(N_("unknown specialty %(slugs)s"), slugs=repr(specialty))
        ids = items_for_specialty(session, issue, spec.slug, now, options)
        edition, specialties = Edition.CLINICIAN.value, {spec.slug: spec.name}
        recipient = neutral_recipient(renderer.base_url, web_url=archive_url)
    rendered = render_items(
        session, renderer, untracked_context(issue, renderer.base_url), ids, edition, specialties, recipient
    )
    return Preview(
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        items=tuple(ids),
        empty=tuple(empty_audiences(session, issue, now, options)),
    )


def render_items(
    session: Session,
    renderer: EmailRenderer,
    issue: dict[str, Any],
    ids: Sequence[str],
    edition: str,
    specialties: dict[str, str],
    recipient: Recipient,
    locale: str = DEFAULT_LOCALE,
) -> RenderedEmail:
    """Render the given summaries (in this order) through the email templates, in ``locale``."""
    if not ids:
        raise InvalidIssue(N_("this digest would be empty: nothing pinned and no new summaries"))
    by_id = {s.id: s for s in session.scalars(select(Summary).where(Summary.id.in_(ids)))}
    variant = build_variant(edition, [by_id[i] for i in ids if i in by_id], specialties, issue, locale=locale)
    return renderer.render_alone(variant, recipient)


def send_test(
    session: Session,
    composer: MessageComposer,
    transport: Transport,
    issue_id: int,
    to: str,
    now: datetime,
    options: PlanOptions,
    *,
    specialty: str | None = None,
    subscriber_id: int | None = None,
) -> OutgoingMessage:
    """Send one test copy of the preview to any address: subject prefixed, not in the ledger."""
    try:
        address = normalize_email(to)
    except InvalidAddress as exc:
        raise InvalidIssue.like(exc) from None
    preview = preview_issue(
        session, composer.renderer, issue_id, now, options, specialty=specialty, subscriber_id=subscriber_id
    )
    rendered = RenderedEmail(subject=TEST_PREFIX + preview.subject, html=preview.html, text=preview.text)
    msg = composer.compose_transactional(
        address, "", rendered, now, headers=(("List-Id", composer.list_id),), id_prefix=f"test.{issue_id}"
    )
    (result,) = transport.send([msg])
    if not result.accepted:
        raise TestSendFailed(
            N_("the test message to %(address)s was not accepted: %(error)s"), address=address, error=result.error
        )
    return msg
