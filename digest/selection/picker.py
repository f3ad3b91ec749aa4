"""Which summaries each subscriber gets, as set-based SQL over all due subscribers at once.

For each subscriber: summaries in any of their specialties, published within the lookback window
and after their last digest (or imported since), never carried by an earlier delivery to them that
is pending, sending or sent; ranked by evidence level, then sample size, then recency.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.sql.selectable import Subquery

from digest.delivery.models import Delivery, DeliveryItem, DeliveryStatus
from digest.ingest.models import Summary, summary_specialties
from digest.subscribers.models import Subscriber, subscriber_specialties

LIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT)


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
        # Explicit: inside has_candidate the enclosing SELECT has no ``subscribers``, and implicit
        # correlation (one level only) would add it here as a cross join, so that a summary carried
        # to *any* subscriber counted as carried to this one.
        .correlate(Subscriber, Summary)
    )
    return and_(
        Summary.published_at <= now,
        Summary.published_at > now - lookback,
        or_(Summary.published_at > since, Summary.created_at > since),
        ~exists(already),
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


def ranked_candidates(now: datetime, lookback: timedelta, subscriber_ids: Select[tuple[int]]) -> Subquery:
    """Candidates of the given subscribers with their rank (1 = first in the digest)."""
    pairs = candidate_pairs(now, lookback).where(Subscriber.id.in_(subscriber_ids)).subquery("pairs")
    rank = (
        func.row_number()
        .over(
            partition_by=pairs.c.subscriber_id,
            order_by=(
                Summary.evidence_level.asc().nulls_last(),
                Summary.sample_size.desc().nulls_last(),
                Summary.published_at.desc(),
                Summary.id,
            ),
        )
        .label("rank")
    )
    return (
        select(pairs.c.subscriber_id, pairs.c.summary_id, rank)
        .join(Summary, Summary.id == pairs.c.summary_id)
        .subquery("ranked")
    )
