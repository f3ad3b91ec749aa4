"""The editor's view of the list: filter subscribers, export them as CSV (the import's columns, so
an export can be edited and imported again), and the two actions an editor may take on a person:
unsubscribe them (as if they had clicked the link) or suppress the address (never send to it)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from digest.ingest.models import Specialty
from digest.subscribers.lifecycle import cancel_open_deliveries, unsubscribe
from digest.subscribers.models import ConsentMethod, Subscriber, SuppressionReason, subscriber_specialties
from digest.subscribers.service import CSV_COLUMNS
from digest.subscribers.suppression import suppress

EXPORT_COLUMNS = (*CSV_COLUMNS, "status")
EXPORT_BATCH = 1000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class SubscriberFilter:
    q: str = ""  # part of the address or name
    status: str = ""
    cadence: str = ""
    edition: str = ""
    specialty: str = ""  # slug

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for links to other pages and to the export)."""
        return {k: v for k, v in self.__dict__.items() if v}


def filtered(where: SubscriberFilter) -> Select[Subscriber]:
    """Subscribers matching every given part of the filter, by address."""
    stmt = select(Subscriber).order_by(Subscriber.email)
    if where.q.strip():
        like = f"%{where.q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Subscriber.email).like(like), func.lower(Subscriber.name).like(like)))
    for column, value in ((Subscriber.status, where.status), (Subscriber.cadence, where.cadence)):
        if value:
            stmt = stmt.where(column == value)
    if where.edition:
        stmt = stmt.where(Subscriber.edition == where.edition)
    if where.specialty:
        stmt = stmt.where(
            exists(
                select(1)
                .select_from(subscriber_specialties.join(Specialty))
                .where(subscriber_specialties.c.subscriber_id == Subscriber.id, Specialty.slug == where.specialty)
            )
        )
    return stmt


def _cell(value: str) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection): such a text gets a leading '."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(session: Session, where: SubscriberFilter) -> Iterator[str]:
    """The matching subscribers as CSV text, a batch of rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue()
    for rows in session.scalars(filtered(where).execution_options(yield_per=EXPORT_BATCH)).partitions():
        buffer.seek(0)
        buffer.truncate()
        for r in rows:
            writer.writerow(
                [
                    r.email,
                    ";".join(s.slug for s in r.specialties),
                    r.cadence,
                    r.timezone,
                    _cell(r.name),
                    r.edition,
                    r.locale,
                    r.status,
                ]
            )
        yield buffer.getvalue()


def unsubscribe_by_editor(session: Session, subscriber_id: int, editor_email: str, now: datetime) -> str | None:
    """Unsubscribe someone (they asked by other means); returns their address, None if unknown. The
    consent record says an operator did it, and which editor (not the reader on a ``form``)."""
    return unsubscribe(session, subscriber_id, now, source=f"editor {editor_email}", method=ConsentMethod.OPERATOR)


def suppress_by_editor(session: Session, subscriber_id: int, editor_email: str) -> str | None:
    """Put the address on the suppression list and cancel what was still to go to it."""
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        return None
    suppress(session, row.email, SuppressionReason.OPERATOR, f"suppressed by editor {editor_email}")
    cancel_open_deliveries(session, subscriber_id, "suppressed by an editor")
    return row.email
