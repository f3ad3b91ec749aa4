"""The public archive: the web version of each campaign that went out.

A campaign is a mix per reader (the pins, then each reader's own new summaries), so there is no
one "issue" to show: the archive shows the variant most recipients actually received (the
Selection the most sent deliveries carried; the earliest on a tie), with that variant's edition
and specialties, and says how many of the recipients got it. It has no personal data: no greeting,
no address, no tokens, untracked item links, and no preferences or unsubscribe links (they are
personal; readers find theirs in their email) but a sign-up link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session

from digest.config import DEFAULT_LOCALE
from digest.i18n import N_, number, translations
from digest.ingest.models import Summary, SummaryStatus
from digest.ingest.specialties import specialty_name
from digest.issues.preview import neutral_recipient, render_items, untracked_context
from digest.issues.service import IssueNotFound
from digest.ledger.carried import carried, summaries_by_selection
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind
from digest.rendering.compiled import EmailRenderer
from digest.rendering.filters import join_and
from digest.rendering.personalisation import RenderedEmail
from digest.subscribers.models import Edition, Subscriber


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


@dataclass(frozen=True)
class ArchivedVariant:
    """The variant the archive shows, and how common it was."""

    selection_id: int
    summary_ids: list[str]
    edition: str
    specialties: dict[str, str]  # slug -> name, of a recipient who got it
    recipients: int  # sent messages that carried this variant
    sent: int  # sent messages of the issue
    variants: int  # distinct variants sent
    locale: str = DEFAULT_LOCALE  # the language that recipient got it in


def most_received(session: Session, issue_id: int) -> ArchivedVariant | None:
    """The variant the most sent messages of the issue carried (None if none was sent)."""
    sent = and_(
        Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.SENT, Delivery.selection_id.is_not(None)
    )
    rows = session.execute(
        select(Delivery.selection_id, func.count(), func.min(Delivery.id))
        .where(sent)
        .group_by(Delivery.selection_id)
        .order_by(func.count().desc(), func.min(Delivery.id))
    ).all()
    if not rows:
        return None
    selection_id, recipients, first_delivery = rows[0]
    assert selection_id is not None  # the query keeps deliveries with a selection only
    subscriber = session.scalar(
        select(Subscriber).join(Delivery, Delivery.subscriber_id == Subscriber.id).where(Delivery.id == first_delivery)
    )
    return ArchivedVariant(
        selection_id=selection_id,
        summary_ids=summaries_by_selection(session, [selection_id]).get(selection_id, []),
        edition=subscriber.edition if subscriber else Edition.CLINICIAN.value,
        specialties={sp.slug: sp.name for sp in subscriber.specialties} if subscriber else {},
        recipients=recipients,
        sent=sum(r[1] for r in rows),
        variants=len(rows),
        locale=subscriber.locale if subscriber else DEFAULT_LOCALE,
    )


def web_version(
    session: Session, renderer: EmailRenderer, issue_id: int, locale: str = DEFAULT_LOCALE
) -> RenderedEmail:
    """The web version of a published campaign (``GET /issues/{id}``): the email as its readers got it
    (the variant most of them received, in its language), with the note about it and the links
    around it in the visitor's ``locale`` (marked with their own ``lang``). IssueNotFound otherwise."""
    issue = session.scalar(select(Issue).where(Issue.id == issue_id, Issue.kind == IssueKind.CAMPAIGN, _published()))
    variant = most_received(session, issue_id) if issue is not None else None
    if issue is None or variant is None:
        raise IssueNotFound(N_("issue %(id)s is not in the archive"), id=issue_id)
    gettext, ngettext = translations(locale).gettext, translations(locale).ngettext
    if variant.variants == 1:
        note = ngettext(
            "This is the web version of what its one recipient received.",
            "This is the web version of what all %(sent)s recipients received.",
            variant.sent,
        ) % {"sent": number(variant.sent, locale)}
    else:
        note = gettext(
            "This is the web version of what %(recipients)s of the %(sent)s recipients received; "
            "the others got one of %(mixes)s other mixes for their specialties."
        ) % {
            "recipients": number(variant.recipients, locale),
            "sent": number(variant.sent, locale),
            "mixes": number(variant.variants - 1, locale),
        }
    names = [specialty_name(name, locale) for _, name in sorted(variant.specialties.items())]
    chosen = join_and(names, locale) if names else gettext("these specialties")
    context = {
        **untracked_context(issue, renderer.base_url),
        "web_url": "",
        "view_online": False,
        "archive_lang": locale,
        "archive_note": note + " " + gettext("It went to readers who chose %(chosen)s.") % {"chosen": chosen},
        "archive_subscribe": gettext("Subscribe to %(list_name)s") % {"list_name": renderer.list_name},
        "archive_subscribe_label": gettext("Subscribe:"),
        "archive_manage": gettext(
            "To change or stop your own subscription, use the links at the end of any digest you received."
        ),
        "signup_url": renderer.base_url.rstrip("/") + "/",
    }
    return render_items(
        session,
        renderer,
        context,
        variant.summary_ids,
        variant.edition,
        variant.specialties,
        neutral_recipient(renderer.base_url, email="", name=""),
        variant.locale,
    )
