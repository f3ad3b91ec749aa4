"""A reader's rows in the ledger, found issue by issue.

No index of ``deliveries`` leads with the subscriber: such an index takes one new entry per reader
per day, each on that reader's own leaf page, so on a ledger with history every day's planning and
every send touched one random page per message (a page read, and a full-page image in the WAL after
each checkpoint; docs/scaling.md). A reader's rows are reached through ``(issue_id, subscriber_id)``
instead: one index probe per issue in the set the caller names. Each lookup names the smallest set
that can hold what it looks for (the open issues for an unsubscribe, the recent ones for planning's
history, every kept issue for an export), so its cost follows that set and never the ledger's size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.orm import QueryableAttribute

from digest.ledger.models import Delivery, Issue, IssueStatus

# An issue with rows still to send (a cancelled issue's pending rows are cancelled with it, and an
# issue is only marked sent once none is pending).
FINISHED = (IssueStatus.SENT, IssueStatus.CANCELLED)


def open_issues() -> Select[int]:
    return select(Issue.id).where(Issue.status.not_in(FINISHED))


def every_issue() -> Select[int]:
    return select(Issue.id)


def rows_of(
    subscriber: ColumnElement[Any] | QueryableAttribute[int] | int, issues: Select[int], table: Any = Delivery
) -> ColumnElement[bool]:
    """The rows of ``table`` (``Delivery`` or an alias of it) that belong to ``subscriber`` (an id or
    a column of an enclosing query) and to one of ``issues``."""
    return and_(table.issue_id.in_(issues), table.subscriber_id == subscriber)
