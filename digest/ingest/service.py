"""Validate raw summary records and upsert them by ``id``, all or nothing unless told to skip."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from digest.db import utcnow
from digest.errors import InputError, InvalidInput, from_validation_error
from digest.ingest.models import Summary
from digest.ingest.schema import SummaryIn
from digest.ingest.specialties import specialty_map
from digest.ingest.versions import classify, flag_urgent, record_version
from digest.progress import Progress, silent
from digest.untrusted import strip_record

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[InputError] = field(default_factory=list)
    versions: int = 0  # new versions stored (digest/corrections reviews them: corrections, safety alerts)
    cleaned: list[InputError] = field(default_factory=list)  # fields whose invisible characters were removed

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


def validate_records(
    session: Session,
    records: list[tuple[int, dict[str, Any]]],
    source: str = "",
    progress: Progress = silent,
    cleaned: list[InputError] | None = None,
) -> tuple[list[SummaryIn], list[InputError]]:
    """Validate every record; return the valid ones and every error (never stops at the first).
    Control and direction characters are removed first; each field changed is logged and added to
    ``cleaned``."""
    known = set(specialty_map(session))
    valid: list[SummaryIn] = []
    errors: list[InputError] = []
    first_seen: dict[str, int] = {}
    for done, (number, raw) in enumerate(records, start=1):
        progress("checking", done, len(records))
        raw, notes = strip_record(raw, number, source)
        for note in notes:
            log.warning("untrusted input cleaned: %s", note)
        if cleaned is not None:
            cleaned += notes
        try:
            item = SummaryIn.model_validate(raw, context={"specialties": known})
        except ValidationError as exc:
            errors.extend(from_validation_error(number, exc, source))
            continue
        if item.id in first_seen:
            errors.append(
                InputError(number, "id", f"duplicate id {item.id!r} (also record {first_seen[item.id]})", source)
            )
            continue
        first_seen[item.id] = number
        valid.append(item)
    return valid, errors


def import_summaries(
    session: Session,
    records: list[tuple[int, dict[str, Any]]],
    *,
    source: str = "",
    skip_invalid: bool = False,
    prior_errors: list[InputError] | None = None,
    progress: Progress = silent,
) -> ImportReport:
    """Upsert summaries by id.

    With any invalid record (including ``prior_errors`` from reading the source) nothing is
    written and ``InvalidInput`` lists every error, unless ``skip_invalid`` is set.
    """
    cleaned: list[InputError] = []
    valid, errors = validate_records(session, records, source, progress, cleaned)
    errors = list(prior_errors or []) + errors
    if errors and not skip_invalid:
        raise InvalidInput(errors)
    report = ImportReport(skipped=errors, cleaned=cleaned)
    specialties = specialty_map(session)
    for done, item in enumerate(valid, start=1):
        progress("writing", done, len(valid))
        upsert_summary(session, item, specialties, report)
    session.flush()
    return report


def upsert_summary(session: Session, item: SummaryIn, specialties: dict[str, Any], report: ImportReport) -> None:
    """Create or update one summary, storing each changed version (digest/ingest/versions.py). What
    readers are told about it (corrections, safety alerts) is decided later from those versions, by
    digest/corrections/review.py in the next send cycle."""
    values = item.columns()
    wanted = [specialties[s] for s in item.specialties]
    row = session.get(Summary, item.id)
    now = utcnow()
    if row is None:
        row = Summary(id=item.id, specialties=wanted, version=1, **values)
        session.add(row)
        session.flush()
        record_version(session, row, None, now, urgent=item.urgent)
        report.created += 1
        report.versions += 1
        return
    change = classify(row, values, set(item.specialties), item.material_change)
    if change is None:
        report.unchanged += 1
        if item.urgent:
            flag_urgent(session, row)
        return
    for key, value in values.items():
        setattr(row, key, value)
    row.specialties = wanted
    # Stamped here, not only by the column's onupdate: a change of specialties alone updates no
    # column of the row, and workers re-read a summary when its updated_at moves (SummaryCache).
    row.updated_at = now
    row.version += 1
    session.flush()
    record_version(session, row, change, now, urgent=item.urgent)
    report.updated += 1
    report.versions += 1
