"""Planning: write the ledger for every due subscriber in a few set-based statements.

One planning run creates one digest Issue, one pending Delivery per due subscriber who has something
new, and the Selections (ordered summary lists) those deliveries carry. Nothing is rendered or sent
here; the ledger is the hand-off to delivery. A subscriber with nothing new gets no row, hence no email.

The ranking is global, so subscribers with the same specialty set, edition and watermark
(``picker.with_group_key``) have the same candidates and, unless their own history takes some out,
the same list. Planning therefore ranks once per group (a few thousand groups for 100k subscribers),
for one representative, and points every member's delivery at the group's list. Members to whom an
earlier live delivery already carried a summary of that list are planned one by one afterwards,
with their history taken out; a group with nothing new gets no deliveries. Deliveries are inserted
in selection order, so id-ordered chunks carry few distinct lists (each worker renders a variant
once). Campaigns (digest/issues/planning.py) are planned by the same ``plan_deliveries``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import FromClause, Subquery

from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus, Selection, SelectionItem
from digest.selection.picker import carried_again, ranked_candidates, with_group_key
from digest.selection.planner import Period, Schedule, current_period
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression


@dataclass(frozen=True)
class PlanOptions:
    max_items: int = 8
    lookback_days: int = 7
    # Demo and operator catch-up: serve the current period to everyone active, even those who
    # joined after its slot. Normal runs only serve periods that began after the subscriber joined.
    include_new_subscribers: bool = False
    # Summary ids an editor pinned: first in every digest that carries them, in this order.
    pinned: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanResult:
    issue_id: int | None
    deliveries: int
    items: int


def due_periods(session: Session, now: datetime) -> list[tuple[Schedule, Period]]:
    """The current period of every distinct schedule among active subscribers."""
    rows = session.execute(
        select(Subscriber.cadence, Subscriber.timezone, Subscriber.send_hour, Subscriber.send_weekday)
        .where(Subscriber.status == SubscriberStatus.ACTIVE)
        .distinct()
    )
    return [(sched, current_period(sched, now)) for sched in (Schedule(*row) for row in rows)]


def _due_subscribers(schedule: Schedule, period: Period, options: PlanOptions) -> Select[int]:
    """Active, unsuppressed subscribers on ``schedule`` not yet served ``period`` (whether they have
    anything new is up to the selection: a subscriber without a non-empty list gets no delivery)."""
    # NOT IN, not a correlated NOT EXISTS: this SELECT feeds an INSERT into deliveries, and on a
    # fresh table the planner picked a nested-loop anti join that re-scanned the table being filled
    # once per subscriber (quadratic: 11 minutes for 200k). NOT IN over a NOT NULL column is the
    # same test, run once as a hashed subplan over the period's range of the (period_key,
    # subscriber_id) index, whatever the ledger's age.
    served = select(Delivery.subscriber_id).where(Delivery.period_key == period.key)
    suppressed = select(Suppression.id).where(Suppression.value == func.lower(Subscriber.email))
    stmt = select(Subscriber.id).where(
        Subscriber.status == SubscriberStatus.ACTIVE,
        Subscriber.cadence == schedule.cadence,
        Subscriber.timezone == schedule.timezone,
        Subscriber.send_hour == schedule.send_hour,
        Subscriber.send_weekday == schedule.send_weekday,
        Subscriber.id.not_in(served),
        ~exists(suppressed),
    )
    if not options.include_new_subscribers:
        stmt = stmt.where(func.coalesce(Subscriber.confirmed_at, Subscriber.created_at) <= period.slot)
    return stmt


def plan_digests(session: Session, now: datetime, options: PlanOptions) -> PlanResult:
    """Plan the cadence digest for everyone due at ``now``; returns the new issue (or None)."""
    issue = Issue(
        kind=IssueKind.DIGEST,
        status=IssueStatus.SENDING,
        subject=f"Evidence digest {now:%Y-%m-%d %H:%M} UTC",
        planned_at=now,
    )
    session.add(issue)
    session.flush()
    _tune(session)
    lookback = timedelta(days=options.lookback_days)
    for schedule, period in due_periods(session, now):
        plan_deliveries(
            session,
            issue.id,
            _due_subscribers(schedule, period, options),
            now,
            lookback,
            lambda ids, history: ranked_candidates(now, lookback, ids, options.pinned, history=history),
            options.max_items,
            period_key=period.key,
        )
    return _finish_plan(session, issue, now)


# Ranks the candidates of the given subscribers, with or without their own history taken out.
Ranker = Callable[[Select[int], bool], Subquery]


def plan_deliveries(
    session: Session,
    issue_id: int,
    due: Select[int],
    now: datetime,
    lookback: timedelta,
    ranker: Ranker,
    max_items: int,
    *,
    period_key: str | None = None,
    first: Sequence[str] = (),
) -> None:
    """Write the lists and deliveries of the issue for the ``due`` subscribers (a select of
    ``Subscriber.id``): ``first`` (pins, in that order) then the top of ``ranker`` up to
    ``max_items`` in all. Whoever ends up with an empty list gets no delivery.

    First pass: one list per group (``picker.with_group_key``) ranked for one member, given to
    every member except those an earlier delivery already carried part of it to. Second pass: those
    members, one list each, ranked with their history taken out. Both passes re-read ``due`` minus
    whoever the issue already has, so the second only sees who the first left.
    """
    planned = select(Delivery.subscriber_id).where(Delivery.issue_id == issue_id)
    dialect = session.get_bind().dialect.name
    grouped = _temporary(
        session, _GROUPED, with_group_key(due.where(Subscriber.id.not_in(planned)), now, lookback, dialect)
    )
    _choose_lists(session, issue_id, grouped, lambda reps: ranker(reps, False), max_items, first)
    items = _temporary(
        session,
        _ITEMS,
        select(Selection.key, SelectionItem.summary_id)
        .join(SelectionItem, SelectionItem.selection_id == Selection.id)
        .where(Selection.issue_id == issue_id),
    )
    carried = carried_again(session, issue_id, grouped, items)
    if carried is None:  # no member is held back: no second pass (a daily digest, as a rule)
        _insert_deliveries(session, issue_id, grouped, now, period_key)
        _drop(session, items, grouped)
        return
    # Materialised with a key, for an index probe per member whatever the row estimates: as a
    # subquery it was a NOT IN of (reader, list) pairs of every list, which PostgreSQL hashes only
    # when it expects them to fit in work_mem; on a large list they did not, and every member
    # scanned the pairs (over an hour for 100k readers on a year of history).
    held = _temporary(session, _HELD, carried)
    _insert_deliveries(session, issue_id, grouped, now, period_key, held=held)
    listed = select(Selection.key).where(
        Selection.issue_id == issue_id, exists(select(1).where(SelectionItem.selection_id == Selection.id))
    )
    # Materialised and analysed too: usually none or a few members. As a subquery PostgreSQL could
    # not tell, and with the issue's new lists estimated at one row (no statistics know them) it
    # evaluated the subquery once per list: 60 s for none at all, 100k readers on 90 days of history.
    alone = _temporary(
        session,
        _ALONE,
        select(grouped.c.id, (grouped.c.key + "#" + cast(grouped.c.id, Text)).label("key")).where(
            grouped.c.key.in_(listed), grouped.c.id.not_in(planned)
        ),
    )
    _choose_lists(session, issue_id, alone, lambda ids: ranker(ids, True), max_items, first)
    _insert_deliveries(session, issue_id, alone, now, period_key)
    _drop(session, alone, held, items, grouped)


# Planning's intermediate sets, each a temporary table of the planning transaction. Described once,
# here: a statement that names a Table is cached by that Table object, so a table described anew per
# run made every planning statement a cache miss (compiled again each run, 12 statements a run
# pushing the send path's statements out of SQLAlchemy's cache).
_TEMPORARY = MetaData()


def _members_table(name: str) -> Table:
    """Planning members: subscriber ``id`` and the ``key`` of the list they get."""
    return Table(
        name,
        _TEMPORARY,
        Column("id", Integer, nullable=False),
        Column("key", Text, nullable=False),
        prefixes=["TEMPORARY"],
    )


def _lists_table(members: Table) -> Table:
    """The new lists of ``members``: each key, a member, then the Selection's id."""
    return Table(
        f"{members.name}_lists",
        _TEMPORARY,
        Column("key", Text, primary_key=True),
        Column("rep", Integer, nullable=False),
        Column("id", Integer),
        prefixes=["TEMPORARY"],
    )


_GROUPED = _members_table("planning_members")
_ALONE = _members_table("planning_alone")
_LISTS = {members: _lists_table(members) for members in (_GROUPED, _ALONE)}
_ITEMS = Table(
    "planning_items",
    _TEMPORARY,
    Column("key", Text, primary_key=True),
    Column("summary_id", Text, primary_key=True),
    prefixes=["TEMPORARY"],
)
_HELD = Table("planning_held", _TEMPORARY, Column("id", Integer, primary_key=True), prefixes=["TEMPORARY"])


def _temporary(session: Session, table: Table, rows: Select[*tuple[Any, ...]]) -> Table:
    """``rows`` written once into ``table``, created for this transaction, and analysed. Planning's
    intermediate sets are read by several statements (the members' group key, an aggregate over each
    reader's specialties, cost about 0.5 s per read for 100k readers) and their sizes are unknown to
    PostgreSQL as subqueries. The caller drops the table when done."""
    connection = session.connection()
    table.create(connection)
    connection.execute(insert(table).from_select([column.name for column in table.columns], rows))
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ANALYZE {table.name}"))  # temporary tables get no autovacuum statistics
    return table


def _drop(session: Session, *tables: Table) -> None:
    for table in tables:
        table.drop(session.connection())


def _choose_lists(
    session: Session,
    issue_id: int,
    members: Table,
    ranked_for: Callable[[Select[int]], Subquery],
    max_items: int,
    first: Sequence[str] = (),
) -> None:
    """One Selection per distinct ``members.c.key`` not chosen yet for the issue: ``first``, then
    the top of ``ranked_for`` applied to one member of the key, ``max_items`` in all. ``members``
    has columns ``id`` (subscriber) and ``key``; all members of a key must be entitled to the same
    list (``picker.with_group_key``, or a key per subscriber)."""
    # The new lists (key, a member, then the Selection's id), materialised with a key on each side.
    # No statistics know a new issue's selections (estimated at one row), so joined in a statement
    # they drove the plan: ranked for "one" list, PostgreSQL walked every summary ever published in
    # each group's specialties (2.7 s instead of 0.4 s, 10k readers on 90 days of history); with
    # the lists outside a nested loop, the ranking or the groups were read again for each list
    # (groups x groups: 45,600 rows for 76 lists at 2,000 readers).
    chosen = select(Selection.key).where(Selection.issue_id == issue_id)
    fresh = _temporary(
        session,
        _LISTS[members],
        select(members.c.key, func.min(members.c.id), literal(None, Integer))
        .where(members.c.key.not_in(chosen))
        .group_by(members.c.key),
    )
    session.execute(insert(Selection).from_select(["issue_id", "key"], select(literal(issue_id), fresh.c.key)))
    session.execute(
        update(fresh).values(
            id=select(Selection.id)
            .where(Selection.issue_id == issue_id, Selection.key == fresh.c.key)
            .scalar_subquery()
        )
    )
    parts = [
        select(fresh.c.id, literal(summary_id), literal(position)) for position, summary_id in enumerate(first, start=1)
    ]
    if max_items > len(first):
        ranked = ranked_for(select(fresh.c.rep))
        parts.append(
            select(fresh.c.id, ranked.c.summary_id, ranked.c.rank + len(first))
            .join(ranked, ranked.c.subscriber_id == fresh.c.rep)
            .where(
                ranked.c.rank <= max_items - len(first),
                # The reader's own cap (members of a group share it: it is part of the group key).
                or_(ranked.c.cap.is_(None), ranked.c.rank <= ranked.c.cap - len(first)),
            )
        )
    if parts:
        session.execute(
            insert(SelectionItem).from_select(["selection_id", "summary_id", "position"], union_all(*parts))
        )
    _drop(session, fresh)


def _insert_deliveries(
    session: Session,
    issue_id: int,
    members: FromClause,
    now: datetime,
    period_key: str | None,
    *,
    held: Table | None = None,
) -> None:
    """A pending delivery for each member whose key has a non-empty Selection, except the members
    ``held`` names (its ``id``); grouped by selection in id order."""
    rows = (
        select(
            literal(issue_id),
            members.c.id,
            literal(period_key, Delivery.period_key.type),
            literal(DeliveryStatus.PENDING.value),
            literal(""),
            literal(0),
            literal(now, Delivery.created_at.type),
            Selection.id,
        )
        .join(Selection, and_(Selection.issue_id == issue_id, Selection.key == members.c.key))
        .where(exists(select(1).where(SelectionItem.selection_id == Selection.id)))
        .order_by(Selection.id, members.c.id)
    )
    if held is not None:
        rows = rows.where(~exists(select(1).where(held.c.id == members.c.id)))
    session.execute(
        insert(Delivery).from_select(
            [
                "issue_id",
                "subscriber_id",
                "period_key",
                "status",
                "variant_key",
                "attempts",
                "created_at",
                "selection_id",
            ],
            rows,
        )
    )


def _finish_plan(session: Session, issue: Issue, now: datetime) -> PlanResult:
    """Drop the lists nobody got, stamp the subscribers' last digest; no deliveries, no issue."""
    planned = select(Delivery.subscriber_id).where(Delivery.issue_id == issue.id)
    count = session.scalar(select(func.count()).select_from(planned.subquery())) or 0
    if not count:
        session.execute(delete(Issue).where(Issue.id == issue.id))
        session.flush()
        return PlanResult(issue_id=None, deliveries=0, items=0)
    drop_unused_lists(session, issue.id)
    _refresh_statistics(session, count)
    session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(planned))
        .values(last_digest_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return PlanResult(issue_id=issue.id, deliveries=count, items=items_planned(session, issue.id))


def _refresh_statistics(session: Session, planned: int) -> None:
    """On PostgreSQL, ANALYZE deliveries when the rows just planned are a large share of what its
    statistics know (a young ledger), so that the statements that follow (the watermark stamp,
    dispatch) are not planned for a table of a few dozen rows. On an aged ledger a day's rows are a
    small share: the statistics hold, autovacuum refreshes them, and ANALYZE, which samples up to
    30,000 pages of the table, would cost more the older the ledger (0.8 s on 30 days of 10k readers)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    known = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'deliveries'::regclass")) or 0
    if known < 10 * planned:  # also -1: never analyzed
        session.execute(text("ANALYZE deliveries"))


def drop_unused_lists(session: Session, issue_id: int) -> None:
    """Delete the issue's selections no delivery points at (empty ones, and those of groups whose
    members were all planned one by one)."""
    used = select(Delivery.selection_id).where(Delivery.issue_id == issue_id, Delivery.selection_id.is_not(None))
    session.execute(delete(Selection).where(Selection.issue_id == issue_id, Selection.id.not_in(used)))


def items_planned(session: Session, issue_id: int) -> int:
    """Summaries carried by the issue's deliveries, counted per delivery."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(SelectionItem, SelectionItem.selection_id == Delivery.selection_id)
            .where(Delivery.issue_id == issue_id)
        )
        or 0
    )


def _tune(session: Session) -> None:
    """On PostgreSQL, for this transaction: room in memory for the ranking sort and hash joins, and
    no JIT. The selections are filled within the transaction, so the planner's row estimates for them
    are guesses; its cost estimates then passed the JIT threshold and compiling took 0.5 s of
    statements that run in a few milliseconds."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '128MB'"))
        session.execute(text("SET LOCAL jit = off"))


def pending_page(session: Session, issue_id: int, size: int, *, after: int = 0) -> list[int]:
    """One page of the issue's unsent delivery ids above ``after``, in id order.

    Keyset pagination: each page is a short query in its own transaction, so memory stays flat for any
    list size and no transaction stays open while chunks are queued (or run in-process).
    """
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.issue_id == issue_id,
                Delivery.id > after,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .order_by(Delivery.id)
            .limit(size)
        )
    )


def stalled_issues(session: Session, now: datetime, lease: timedelta) -> list[int]:
    """Sending issues with rows still to send whose chunks were last queued over a lease ago.

    Their tasks were lost (or their rows went back to pending after a pause); queueing them again is
    safe because delivery claims each row once. Recently dispatched issues are left alone, so a long
    send is not queued again every minute.
    """
    open_rows = select(Delivery.id).where(Delivery.issue_id == Issue.id, Delivery.status == DeliveryStatus.PENDING)
    return list(
        session.scalars(
            select(Issue.id).where(
                Issue.status == IssueStatus.SENDING,
                (Issue.dispatched_at.is_(None)) | (Issue.dispatched_at < now - lease),
                exists(open_rows),
            )
        )
    )


def interrupted_dispatches(session: Session, before: datetime) -> list[int]:
    """Sending issues whose last dispatch, started before ``before``, stopped before queueing every
    row: rows above its checkpoint (``dispatched_through``) are still pending. The dispatch lost its
    database connection or the broker mid-way; the next tick carries on from the checkpoint rather
    than leaving those rows for the lease."""
    unqueued = select(Delivery.id).where(
        Delivery.issue_id == Issue.id,
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.id > func.coalesce(Issue.dispatched_through, 0),
    )
    return list(
        session.scalars(
            select(Issue.id).where(Issue.status == IssueStatus.SENDING, Issue.dispatched_at < before, exists(unqueued))
        )
    )
