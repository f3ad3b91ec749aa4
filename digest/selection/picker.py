"""Which summaries each subscriber gets, as set-based SQL over all due subscribers at once.

For each subscriber: summaries in any of their specialties, published within the lookback window
and after their last digest (or imported since), never carried by an earlier delivery to them that
is pending, sending or sent; ranked by evidence level, then the reader's language (a summary in the
reader's locale before one of the same level in another: summaries are never translated), then
sample size, then recency.

Patient-edition subscribers only get summaries that have a plain-language patient section: a
summary without one is left out of their digest (not shown half-empty), so a patient subscriber
whose only new summaries lack it gets no email at all.

Planning (digest/selection/service.py) ranks once per group of subscribers that share a
``with_group_key`` key, without their history (``history=False``), and uses ``carried_again`` to
find the members that history concerns; those are ranked one by one with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, QueryableAttribute, Session
from sqlalchemy.sql.selectable import FromClause, Subquery

from digest.ingest.models import Summary, SummaryStatus, summary_specialties
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind, Selection, SelectionItem
from digest.ledger.readers import rows_of
from digest.subscribers.models import Edition, Subscriber, subscriber_specialties

LIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENT)
# The order of summaries in a digest: strongest evidence, then largest study, then newest; for a
# reader (``ranked_candidates``), their language right after the evidence level.
RANKING = (
    Summary.evidence_level.asc().nulls_last(),
    Summary.sample_size.desc().nulls_last(),
    Summary.published_at.desc(),
    Summary.id,
)


def _since(now: datetime, lookback: timedelta) -> ColumnElement[datetime]:
    """The subscriber's watermark: their last digest, or the start of the lookback window."""
    return func.coalesce(Subscriber.last_digest_at, now - lookback)


def _carried_before(now: datetime, lookback: timedelta) -> ColumnElement[bool]:
    """The enclosing query's summary was carried by a live delivery to its subscriber.

    Searched in the issues that can have carried a candidate: a candidate was published within the
    lookback window, and a digest only carries what is published by its planning time, so only the
    digests planned within the window; campaigns and notices carry what an editor pins, whenever, so
    all of them (a few a week). The reader's rows are reached issue by issue (digest.ledger.readers).
    """
    could_carry = select(Issue.id).where(or_(Issue.kind != IssueKind.DIGEST, Issue.planned_at > now - lookback))
    return exists(
        select(1)
        .select_from(Delivery)
        .join(SelectionItem, SelectionItem.selection_id == Delivery.selection_id)
        .where(
            rows_of(Subscriber.id, could_carry),
            SelectionItem.summary_id == Summary.id,
            Delivery.status.in_(LIVE_STATUSES),
        )
        # Explicitly: correlated to the subscriber and the summary of the enclosing query, whatever
        # nesting it sits in; "carried to anyone" must never stand in for "carried to this subscriber".
        .correlate_except(Delivery, SelectionItem, Issue)
    )


def _eligible(now: datetime, lookback: timedelta, history: bool) -> ColumnElement[bool]:
    since = _since(now, lookback)
    return and_(
        Summary.published_at <= now,
        Summary.published_at > now - lookback,
        or_(Summary.published_at > since, Summary.created_at > since),
        Summary.status != SummaryStatus.RETRACTED.value,
        _fits_edition(),
        _fits_relevance(),
        *([~_carried_before(now, lookback)] if history else []),
    )


def _fits_edition() -> ColumnElement[bool]:
    """The summary has what the subscriber's edition leads with (patients: a patient section)."""
    return or_(
        Subscriber.edition != Edition.PATIENT.value,
        func.length(func.trim(func.coalesce(Summary.patient_summary, ""))) > 0,
    )


def _fits_relevance() -> ColumnElement[bool]:
    """The summary passes the subscriber's own filters (digest/subscribers/relevance.py): evidence
    at least as strong as their minimum level (an unrated summary does not), one of their study types."""
    wanted_types = literal("|") + Subscriber.study_types + literal("|")
    return and_(
        or_(
            Subscriber.min_evidence_level.is_(None),
            and_(Summary.evidence_level.is_not(None), Summary.evidence_level <= Subscriber.min_evidence_level),
        ),
        or_(
            Subscriber.study_types.is_(None),
            wanted_types.like(literal("%|") + func.lower(Summary.study_type) + literal("|%")),
        ),
    )


# subscriber_specialties -> summary_specialties -> summaries: "a summary in one of their specialties".
_SPECIALTY_MATCH = subscriber_specialties.join(
    summary_specialties, summary_specialties.c.specialty_id == subscriber_specialties.c.specialty_id
).join(Summary, Summary.id == summary_specialties.c.summary_id)


def candidate_pairs(now: datetime, lookback: timedelta, *, history: bool = True) -> Select[int, str]:
    """(subscriber_id, summary_id) for every subscriber and each new summary in their specialties.

    ``history=False`` leaves out the "never carried to them before" test: the candidates every
    subscriber with the same ``with_group_key`` key shares.
    """
    return (
        select(Subscriber.id.label("subscriber_id"), Summary.id.label("summary_id"))
        .select_from(Subscriber)
        .join(_SPECIALTY_MATCH, subscriber_specialties.c.subscriber_id == Subscriber.id)
        .where(_eligible(now, lookback, history))
        .distinct()
    )


def has_candidate(now: datetime, lookback: timedelta) -> ColumnElement[bool]:
    """Correlated EXISTS: the enclosing query's subscriber has at least one new summary."""
    return exists(
        select(1)
        .select_from(_SPECIALTY_MATCH)
        .where(subscriber_specialties.c.subscriber_id == Subscriber.id, _eligible(now, lookback, True))
    )


def with_group_key(subscribers: Select[int], now: datetime, lookback: timedelta, dialect: str) -> Select[int, str]:
    """``subscribers`` (a select of ``Subscriber.id``) with a ``key`` column: what a subscriber's
    candidates depend on, as one string (specialty set, edition, watermark, relevance filters, locale).
    Subscribers with the same key have the same candidates before their own history is taken out, and
    rank them alike, hence the same list.

    One join and one aggregate over the subscribers' specialties (a correlated subquery per
    subscriber cost twice as much at 100k). The ids are concatenated in id order on PostgreSQL;
    SQLite (3.40) has no ORDER BY in aggregates and concatenates in index order. Either way equal
    keys mean equal sets, which is all correctness needs: an unordered key could only split a group.
    """
    ids: ColumnElement[str] = func.aggregate_strings(cast(subscriber_specialties.c.specialty_id, Text), ",")
    if dialect == "postgresql":
        ids = ids.aggregate_order_by(subscriber_specialties.c.specialty_id)
    filters = (
        func.coalesce(cast(Subscriber.min_evidence_level, Text), "")
        + "|"
        + func.coalesce(Subscriber.study_types, "")
        + "|"
        + func.coalesce(cast(Subscriber.max_items, Text), "")
    )
    key = (
        ids
        + "|"
        + Subscriber.edition
        + "|"
        + cast(_since(now, lookback), Text)
        + "|"
        + filters
        + "|"
        + Subscriber.locale
    )
    return (
        subscribers.join(subscriber_specialties, subscriber_specialties.c.subscriber_id == Subscriber.id)
        .group_by(Subscriber.id)
        .add_columns(key.label("key"))
    )


def key_specialty_ids(key: str) -> list[int]:
    """The specialty ids a ``with_group_key`` key was built from (also for a per-subscriber key,
    ``<group key>#<subscriber id>``): what the list was chosen for, whatever the subscriber has
    chosen since."""
    ids = key.split("|", 1)[0]
    return [int(i) for i in ids.split(",") if i.strip().isdigit()]


def ranked_candidates(
    now: datetime,
    lookback: timedelta,
    subscriber_ids: Select[int],
    pinned: Sequence[str] = (),
    *,
    history: bool = True,
    leave_out: Sequence[str] = (),
) -> Subquery:
    """Candidates of the given subscribers with their rank (1 = first in the digest) and ``cap``, the
    subscriber's own "at most N per digest" (NULL: the site's maximum).

    ``pinned`` summary ids (an editor's choice) come first, in the given order, for the subscribers
    they are candidates of; everything else follows the evidence ranking. ``history`` as in
    ``candidate_pairs``; ``leave_out``: summary ids not to rank (a campaign's pins, placed apart).
    """
    candidates = candidate_pairs(now, lookback, history=history).where(Subscriber.id.in_(subscriber_ids))
    if leave_out:
        candidates = candidates.where(Summary.id.not_in(leave_out))
    pairs = candidates.subquery("pairs")
    order_by: list[ColumnElement[Any] | QueryableAttribute[Any]] = []
    if pinned:
        order_by.append(case({sid: i for i, sid in enumerate(pinned)}, value=Summary.id, else_=len(pinned)))
    in_their_language = case((Summary.language == Subscriber.locale, 0), else_=1)
    order_by += [RANKING[0], in_their_language, *RANKING[1:]]
    rank = func.row_number().over(partition_by=pairs.c.subscriber_id, order_by=order_by).label("rank")
    return (
        select(pairs.c.subscriber_id, pairs.c.summary_id, rank, Subscriber.max_items.label("cap"))
        .join(Summary, Summary.id == pairs.c.summary_id)
        .join(Subscriber, Subscriber.id == pairs.c.subscriber_id)
        .subquery("ranked")
    )


def carried_again(session: Session, issue_id: int, members: FromClause, items: FromClause) -> Select[int] | None:
    """The ``members`` (``id``: subscriber, ``key``: the key of their list in the issue) to whom a
    live delivery of another issue already carried a summary of their list: the group's list is
    wrong for them. ``items`` holds the issue's lists as (``key``, ``summary_id``). None when no
    earlier list carried any of the issue's summaries (after a daily digest, the rule).

    Its cost follows how many earlier deliveries carried the issue's summaries, not how long the
    ledger is. The lists that did are found first, from the ``selection_items.summary_id`` index,
    and their deliveries are then reached by value through ``ix_deliveries_selection_id``. Written
    as one statement, PostgreSQL could not tell the summaries were new, and hash-joined a scan of
    every delivery of the ledger (the plans in docs/scaling.md). Each earlier (reader, summary) is
    then matched against that reader's own list, whose items the caller passes in a table it
    analysed: joined to the issue's selections (no statistics know a new issue's, so they are
    estimated at one row), each pair was matched through the summary to every list holding it.
    """
    dialect = session.get_bind().dialect.name
    listed = list(session.scalars(select(items.c.summary_id).distinct()))
    lists = select(Selection.id).where(Selection.issue_id == issue_id)
    earlier_lists = session.scalars(
        select(SelectionItem.selection_id)
        .where(_among(SelectionItem.summary_id, listed, dialect), SelectionItem.selection_id.not_in(lists))
        .distinct()
    ).all()
    if not earlier_lists:
        return None
    earlier = (
        select(Delivery.subscriber_id, SelectionItem.summary_id)
        .join(SelectionItem, SelectionItem.selection_id == Delivery.selection_id)
        .where(
            _among(Delivery.selection_id, list(earlier_lists), dialect),
            # Said of the items too, so that they are read by their key, not all of them in a scan.
            _among(SelectionItem.selection_id, list(earlier_lists), dialect),
            _among(SelectionItem.summary_id, listed, dialect),
            Delivery.status.in_(LIVE_STATUSES),
            Delivery.issue_id != issue_id,
        )
        .subquery("earlier")
    )
    # Each earlier (reader, summary) with the reader's key first, fenced (MATERIALIZED), then
    # looked up in the reader's own list: left to choose, PostgreSQL joined the summaries to the
    # issue's items first, a row for every list holding each (268,091 rows for 16,000 at 2,000
    # readers, and the more groups, the more lists).
    theirs = (
        select(members.c.id, members.c.key, earlier.c.summary_id)
        .join(earlier, earlier.c.subscriber_id == members.c.id)
        .cte("theirs")
        .prefix_with("MATERIALIZED")
    )
    return (
        select(theirs.c.id)
        .join(items, and_(items.c.key == theirs.c.key, items.c.summary_id == theirs.c.summary_id))
        .distinct()
    )


def _among(column: InstrumentedAttribute[Any], values: list[Any], dialect: str) -> ColumnElement[bool]:
    """``column`` is one of ``values``, sent as values: one array parameter on PostgreSQL (any
    length), an expanding IN elsewhere."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type), unique=True))
    return column.in_(values)
