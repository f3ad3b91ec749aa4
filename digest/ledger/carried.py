"""What deliveries carried: the one way to read a delivery's summaries, in message order.

A delivery points at a Selection shared with every delivery planned with the same list
(digest/ledger/models.py); these helpers hide that indirection from readers (sending, archive,
demo, tests, the "nothing twice" rule in digest/selection/picker.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from digest.db import InList
from digest.ledger.models import Delivery, SelectionItem


def carried() -> Select[int, str, int]:
    """(delivery_id, summary_id, position) of every summary every delivery carries; add filters on
    ``Delivery`` (it is in the FROM clause) and order by ``SelectionItem.position``."""
    return select(Delivery.id.label("delivery_id"), SelectionItem.summary_id, SelectionItem.position).join(
        SelectionItem, SelectionItem.selection_id == Delivery.selection_id
    )


_BY_DELIVERY = carried().where(InList(Delivery.id, "delivery_ids")).order_by(Delivery.id, SelectionItem.position)


def summaries_by_delivery(session: Session, delivery_ids: Iterable[int]) -> dict[int, list[str]]:
    """delivery_id -> the summary ids it carries, in message order (deliveries with none are absent)."""
    out: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(_BY_DELIVERY, {"delivery_ids": list(delivery_ids)})
    for delivery_id, summary_id, _ in rows:
        out[delivery_id].append(summary_id)
    return dict(out)


_BY_SELECTION = (
    select(SelectionItem.selection_id, SelectionItem.summary_id)
    .where(InList(SelectionItem.selection_id, "selection_ids"))
    .order_by(SelectionItem.selection_id, SelectionItem.position)
)


def summaries_by_selection(session: Session, selection_ids: Iterable[int]) -> dict[int, list[str]]:
    """selection_id -> its summary ids, in message order. For the send path: a chunk's rows share a
    few selections (deliveries are numbered by planning group), so their lists are read once per
    selection rather than once per row."""
    out: dict[int, list[str]] = defaultdict(list)
    for selection_id, summary_id in session.execute(_BY_SELECTION, {"selection_ids": list(selection_ids)}):
        out[selection_id].append(summary_id)
    return dict(out)
