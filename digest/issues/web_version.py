"""The web version of one message: what a reader got, rendered again for their browser.

Each digest and campaign carries a "View this email in your browser" link signed for its delivery
(``/web/{token}``, purpose ``web``). The page is built from the same ledger rows as the message: the
delivery's selection (its summaries, in order), the subscriber's edition and specialties, the issue
(intro, pins) and the same recipient values (greeting, preference, unsubscribe and tracked links).
Only messages that went out have one. What it cannot bring back is a summary edited or withdrawn
since: it shows the summaries as they are now, and says so when the result differs from the
variant the message was rendered from (``Delivery.variant_key``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import DEFAULT_LOCALE
from digest.delivery.service import issue_contexts
from digest.ingest.models import Specialty, Summary
from digest.issues.planning import pinned_by_issue
from digest.ledger.carried import summaries_by_selection
from digest.ledger.models import Delivery, DeliveryStatus
from digest.rendering.compiled import RenderedEmail
from digest.rendering.compose import Addressee, MessageComposer, build_variant
from digest.subscribers.models import Subscriber, subscriber_specialties


@dataclass(frozen=True)
class WebVersion:
    rendered: RenderedEmail
    changed: bool  # a summary was edited or withdrawn since the message was sent
    locale: str = DEFAULT_LOCALE  # the reader's, the message's language


def web_version(session: Session, composer: MessageComposer, delivery_id: int) -> WebVersion | None:
    """The web version of a sent delivery; None when there is no such message."""
    row = session.execute(
        select(
            Delivery.issue_id,
            Delivery.selection_id,
            Delivery.variant_key,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.edition,
            Subscriber.locale,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.SENT)
    ).one_or_none()
    if row is None:
        return None
    issue_id, selection_id, variant_key, subscriber_id, email, name, edition, locale = row
    ids = summaries_by_selection(session, [selection_id]).get(selection_id, []) if selection_id is not None else []
    found = {s.id: s for s in session.scalars(select(Summary).where(Summary.id.in_(ids)))}
    specialties = dict(
        session.execute(
            select(Specialty.slug, Specialty.name)
            .join(subscriber_specialties, subscriber_specialties.c.specialty_id == Specialty.id)
            .where(subscriber_specialties.c.subscriber_id == subscriber_id)
        ).all()
    )
    issue = issue_contexts(session, [issue_id], composer.base_url, pinned_by_issue)[issue_id]
    variant = build_variant(edition, [found[i] for i in ids if i in found], specialties, issue, locale=locale)
    who = Addressee(subscriber_id, email, name, edition, specialties, locale=locale)
    recipient = composer.delivery_recipient(delivery_id, who, variant)
    # The page is the message minus its own "view in browser" link.
    rendered = composer.renderer.render(replace(variant, issue={**variant.issue, "view_online": False}), recipient)
    return WebVersion(rendered=rendered, changed=variant.key != variant_key, locale=locale)
