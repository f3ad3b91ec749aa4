"""Which summaries each subscriber gets, as set-based SQL over all due subscribers at once.

For each subscriber: summaries in any of their specialties, published within the lookback window
and after their last digest (or imported since), never carried by an earlier delivery to them that
is pending, sending or sent; ranked by evidence level, then sample size, then recency.

Patient-edition subscribers only get summaries that have a plain-language patient section: a
summary without one is left out of their digest (not shown half-empty), so a patient subscriber
whose only new summaries lack it gets no email at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.sql.selectable import Subquery

from digest.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from digest.ingest.models import Summary, summary_specialties
from digest.subscribers.models import Edition, Subscriber, subscriber_specialties

LIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT)
# The order of summaries in a digest: strongest evidence, then largest study, then newest.
RANKING = (
    Summary.evidence_level.asc().nulls_last(),
    Summary.sample_size.desc().nulls_last(),
    Summary.published_at.desc(),
    Summary.id,
)


def _eligible(now: datetime, lookback: timedelta) -> ColumnElement[bool]:
    since = func.coalesce(Subscriber.last_digest_at, now - lookback)
    already = (
        select(DeliveryItem.summary_id)
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(
            Delivery.subscriber_id == Subscriber.id,
            DeliveryItem.summary_id == Summary.id,
            Delivery.status.in_(LIVE_STATUSES),
        )
        # Explicitly: inside has_candidate the subscriber is two queries up, out of auto-correlation's
        # reach, and "carried to anyone" would stand in for "carried to this subscriber".
        .correlate_except(DeliveryItem, Delivery)
    )
    return and_(
        Summary.published_at <= now,
        Summary.published_at > now - lookback,
        or_(Summary.published_at > since, Summary.created_at > since),
        ~exists(already),
        _fits_edition(),
    )


def _fits_edition() -> ColumnElement[bool]:
    """The summary has what the subscriber's edition leads with (patients: a patient section)."""
    return or_(
        Subscriber.edition != Edition.PATIENT.value,
        func.length(func.trim(func.coalesce(Summary.patient_summary, ""))) > 0,
    )


# subscriber_specialties -> summary_specialties -> summaries: "a summary in one of their specialties".
_SPECIALTY_MATCH = subscriber_specialties.join(
    summary_specialties, summary_specialties.c.specialty_id == subscriber_specialties.c.specialty_id
).join(Summary, Summary.id == summary_specialties.c.summary_id)


def candidate_pairs(now: datetime, lookback: timedelta) -> Select[tuple[int, str]]:
    """(subscriber_id, summary_id) for every subscriber and each new summary in their specialties."""
    return (
        select(Subscriber.id.label("subscriber_id"), Summary.id.label("summary_id"))
        .select_from(Subscriber)
        .join(_SPECIALTY_MATCH, subscriber_specialties.c.subscriber_id == Subscriber.id)
        .where(_eligible(now, lookback))
        .distinct()
    )


def has_candidate(now: datetime, lookback: timedelta) -> ColumnElement[bool]:
    """Correlated EXISTS: the enclosing query's subscriber has at least one new summary."""
    return exists(
        select(1)
        .select_from(_SPECIALTY_MATCH)
        .where(subscriber_specialties.c.subscriber_id == Subscriber.id, _eligible(now, lookback))
    )


def ranked_candidates(
    now: datetime, lookback: timedelta, subscriber_ids: Select[tuple[int]], pinned: Sequence[str] = ()
) -> Subquery:
    """Candidates of the given subscribers with their rank (1 = first in the digest).

    ``pinned`` summary ids (an editor's choice) come first, in the given order, for the subscribers
    they are candidates of; everything else follows the evidence ranking.
    """
    pairs = candidate_pairs(now, lookback).where(Subscriber.id.in_(subscriber_ids)).subquery("pairs")
    order_by: list[ColumnElement[object]] = []
    if pinned:
        order_by.append(case({sid: i for i, sid in enumerate(pinned)}, value=Summary.id, else_=len(pinned)))
    order_by += list(RANKING)
    rank = func.row_number().over(partition_by=pairs.c.subscriber_id, order_by=order_by).label("rank")
    return (
        select(pairs.c.subscriber_id, pairs.c.summary_id, rank)
        .join(Summary, Summary.id == pairs.c.summary_id)
        .subquery("ranked")
    )
