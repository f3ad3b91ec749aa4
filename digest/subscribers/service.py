"""Subscriber operations: operator adds and imports (confirmed at once)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import utcnow
from digest.errors import Explained, InputError, Invalid, InvalidInput, from_validation_error
from digest.i18n import N_
from digest.ingest.specialties import specialty_map
from digest.progress import Progress, silent
from digest.subscribers.consent import record_consent
from digest.subscribers.lifecycle import apply_preferences
from digest.subscribers.models import ConsentAction, ConsentMethod, Subscriber, SubscriberStatus
from digest.subscribers.schema import SubscriberIn
from digest.subscribers.suppression import is_suppressed

CSV_COLUMNS = ("email", "specialties", "cadence", "timezone", "name", "edition", "locale")
REQUIRED_CSV_COLUMNS = {"email", "specialties"}
# Written by the dashboard's export and read back without effect: an import never changes a status.
IGNORED_CSV_COLUMNS = {"status"}


@dataclass
class SubscriberReport:
    created: int = 0
    updated: int = 0
    skipped: list[InputError] = field(default_factory=list)


def upsert_subscriber(
    session: Session,
    data: SubscriberIn,
    *,
    confirmed: bool,
    now: datetime | None = None,
    method: ConsentMethod = ConsentMethod.OPERATOR,
) -> tuple[Subscriber, bool]:
    """Create or update a subscriber; return it and whether it was created. The change is recorded
    as a consent event by ``method``: "added" when it makes them active, "signup" for a new pending
    subscriber (double opt-in follows), "preferences" for an update.

    An address that unsubscribed or is suppressed (erased addresses included) is never re-activated
    by an operator: the person has to sign up again themselves.
    """
    now = now or utcnow()
    if is_suppressed(session, data.email):
        raise Invalid(N_("%(email)s is on the suppression list"), email=data.email)
    row = session.scalar(select(Subscriber).where(Subscriber.email == data.email))
    created = row is None
    if row is None:
        row = Subscriber(email=data.email, status=SubscriberStatus.PENDING, created_at=now)
        session.add(row)
    elif row.status == SubscriberStatus.UNSUBSCRIBED:
        raise Invalid(N_("%(email)s unsubscribed; only they can subscribe again"), email=data.email)
    row.name = data.name or row.name or ""
    apply_preferences(session, row, data)
    row.edition = data.edition
    row.send_hour = data.send_hour
    row.send_weekday = data.send_weekday
    action = ConsentAction.SIGNUP if created else ConsentAction.PREFERENCES
    if confirmed and row.status == SubscriberStatus.PENDING:
        row.status = SubscriberStatus.ACTIVE
        row.confirmed_at = now
        action = ConsentAction.ADDED
    session.flush()
    record_consent(session, row, action, method, now)
    return row, created


def validate_subscriber(session: Session, raw: dict[str, object], record: int = 1, source: str = "") -> SubscriberIn:
    """Validate one subscriber; raise InvalidInput with located errors."""
    try:
        return SubscriberIn.model_validate(raw, context={"specialties": set(specialty_map(session))})
    except ValidationError as exc:
        raise InvalidInput(from_validation_error(record, exc, source)) from None


def add_subscriber(session: Session, raw: dict[str, object]) -> tuple[Subscriber, bool]:
    """The operator's ``subscribers add``: validated, confirmed at once."""
    data = validate_subscriber(session, raw)
    try:
        return upsert_subscriber(session, data, confirmed=True)
    except ValueError as exc:
        raise InvalidInput([InputError.of(1, "email", exc)]) from None


def read_subscriber_csv(
    path: Path, source: str | None = None
) -> tuple[list[tuple[int, dict[str, object]]], list[InputError]]:
    """Read the CSV into raw rows numbered by line (the header is line 1); errors name ``source``
    (the path unless given: an upload names the file the editor chose)."""
    source = source or str(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        return [], [InputError(0, "", f"cannot read file: {exc}", source)]
    with handle:
        reader = csv.DictReader(handle)
        columns = {c.strip().lower() for c in reader.fieldnames or []}
        missing = REQUIRED_CSV_COLUMNS - columns
        if missing:
            return [], [
                InputError.of(1, ",".join(sorted(missing)), Explained(N_("missing column(s) in the header")), source)
            ]
        unknown = columns - set(CSV_COLUMNS) - IGNORED_CSV_COLUMNS
        if unknown:
            return [], [
                InputError.of(
                    1,
                    ",".join(sorted(unknown)),
                    Explained(N_("unknown column(s); expected %(columns)s"), columns=", ".join(CSV_COLUMNS)),
                    source,
                )
            ]
        rows: list[tuple[int, dict[str, object]]] = []
        for row in reader:
            raw = {
                k.strip().lower(): (v or "").strip()
                for k, v in row.items()
                if k and k.strip().lower() not in IGNORED_CSV_COLUMNS
            }
            raw["specialties"] = [s for s in str(raw.get("specialties", "")).split(";") if s.strip()]
            for optional in ("cadence", "timezone", "edition", "name", "locale"):
                if raw.get(optional) == "":
                    raw.pop(optional)
            rows.append((reader.line_num, raw))
    return rows, []


def import_subscribers(
    session: Session,
    path: Path,
    *,
    skip_invalid: bool = False,
    progress: Progress = silent,
    source: str | None = None,
) -> SubscriberReport:
    """Bulk import from CSV, all or nothing unless ``skip_invalid``."""
    source = source or str(path)
    rows, errors = read_subscriber_csv(path, source)
    valid: list[tuple[int, SubscriberIn]] = []
    seen: dict[str, int] = {}
    for done, (number, raw) in enumerate(rows, start=1):
        progress("checking", done, len(rows))
        try:
            data = validate_subscriber(session, raw, number, source)
        except InvalidInput as exc:
            errors.extend(exc.errors)
            continue
        if data.email in seen:
            duplicate = Explained(N_("duplicate address (also line %(line)s)"), line=seen[data.email])
            errors.append(InputError.of(number, "email", duplicate, source))
            continue
        seen[data.email] = number
        valid.append((number, data))
    report = SubscriberReport()
    for done, (number, data) in enumerate(valid, start=1):
        progress("writing", done, len(valid))
        try:
            with session.begin_nested():
                _, created = upsert_subscriber(session, data, confirmed=True, method=ConsentMethod.IMPORT)
        except ValueError as exc:
            errors.append(InputError.of(number, "email", exc, source))
            continue
        report.created += created
        report.updated += not created
    if errors and not skip_invalid:
        raise InvalidInput(errors)
    report.skipped = errors
    return report
