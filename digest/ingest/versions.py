"""Summary versions: what an ingest changed, and whether readers of the earlier version must be told.

Each ingest that changes a record bumps ``Summary.version`` and stores a ``SummaryVersion`` with the
changed fields and their earlier values. A change is *material* (readers of earlier versions are
told) when it touches what a reader acts on (``MATERIAL_FIELDS``) or marks the summary corrected or
retracted, and *severe* (told on its own, within the hour after approval, rather than folded into
the next digest) when it touches ``SEVERE_FIELDS`` or retracts. The record's ``material_change``
flag can raise any change to material (``true``), and lower a lesser one (the patient section, a
``corrected`` status) to cosmetic (``false``). It never lowers a severe change: a changed key
takeaway, outcomes or safety text, or a retraction, always opens a correction for an editor to
approve or dismiss, because an upstream flag must not silence what clinicians act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import DEFAULT_LOCALE
from digest.i18n import N_, translations
from digest.ingest.models import Summary, SummaryStatus, SummaryVersion

# Record fields (columns of Summary, plus "specialties") as readers know them, in English (the
# source strings: ``field_name`` translates them where they are shown, in the reader's locale).
SEVERE_FIELDS = ("key_takeaway", "outcomes", "safety")
MATERIAL_FIELDS = (*SEVERE_FIELDS, "patient_summary")
FIELD_NAMES = {
    "key_takeaway": N_("key takeaway"),
    "outcomes": N_("outcomes"),
    "safety": N_("safety"),
    "patient_summary": N_("patient section"),
    "status": N_("status"),
    "correction_note": N_("correction note"),
    # The others, named as ``in_words`` always wrote them (the field with spaces for underscores).
    "title": N_("title"),
    "summary": N_("summary"),
    "patient_title": N_("patient title"),
    "study_type": N_("study type"),
    "sample_size": N_("sample size"),
    "evidence_level": N_("evidence level"),
    "study_published": N_("study published"),
    "source_url": N_("source url"),
    "language": N_("language"),
    "published_at": N_("published at"),
    "specialties": N_("specialties"),
}
RETRACTED_WORDS = N_("status (retracted)")


def field_name(field: str, locale: str = DEFAULT_LOCALE) -> str:
    """A record field as readers know it, in ``locale`` ("key takeaway", "conclusión clave"); a
    field this list does not know is shown with spaces for underscores."""
    name = FIELD_NAMES.get(field)
    return translations(locale).gettext(name) if name else field.replace("_", " ")


@dataclass(frozen=True)
class Change:
    """What one ingest did to an existing summary."""

    changed: tuple[str, ...]
    previous: dict[str, Any]
    material: bool
    severe: bool
    retracted: bool

    def in_words(self, locale: str = DEFAULT_LOCALE) -> str:
        """The changed fields readers care about, in words ("key takeaway and outcomes"), in ``locale``."""
        return join_fields(self.named_fields(), locale)

    def named_fields(self) -> list[str]:
        """The changed fields ``in_words`` names, in order ("status (retracted)" first when retracted)."""
        names = [f for f in self.changed if f in MATERIAL_FIELDS]
        if self.retracted:
            names.insert(0, RETRACTED)
        if not names:
            names = [f for f in self.changed if f not in ("status", "correction_note")]
        return names


RETRACTED = "status (retracted)"  # the pseudo-field in_words names first for a retraction


def join_fields(fields: list[str], locale: str = DEFAULT_LOCALE) -> str:
    """Fields in words, "a, b and c", in ``locale``."""
    gettext = translations(locale).gettext
    names = [gettext(RETRACTED_WORDS) if f == RETRACTED else field_name(f, locale) for f in fields]
    if len(names) < 2:
        return "".join(names)
    return gettext("%(items)s and %(last)s") % {"items": ", ".join(names[:-1]), "last": names[-1]}


def classify(
    row: Summary, values: Mapping[str, Any], specialties: set[str], material_flag: bool | None
) -> Change | None:
    """The change from ``row`` to the new ``values`` (Summary columns) and specialty slugs, or None."""
    changed = [k for k, v in values.items() if getattr(row, k) != v]
    previous: dict[str, Any] = {k: _plain(getattr(row, k)) for k in changed}
    old_specialties = {s.slug for s in row.specialties}
    if old_specialties != specialties:
        changed.append("specialties")
        previous["specialties"] = sorted(old_specialties)
    if not changed:
        return None
    retracted = values.get("status") == SummaryStatus.RETRACTED and row.status != SummaryStatus.RETRACTED
    newly_corrected = values.get("status") == SummaryStatus.CORRECTED and "status" in changed
    severe = retracted or any(f in SEVERE_FIELDS for f in changed)
    by_rule = severe or newly_corrected or any(f in MATERIAL_FIELDS for f in changed)
    # The flag raises anything and lowers only a lesser change: a severe one stays material.
    material = severe or (by_rule if material_flag is None else material_flag)
    return Change(tuple(changed), previous, material, severe, retracted)


def record_version(
    session: Session, row: Summary, change: Change | None, now: datetime, *, urgent: bool = False
) -> SummaryVersion:
    """Store the row's current version (call after the row holds the new values and version), to be
    reviewed by digest/corrections/review.py."""
    version = SummaryVersion(
        summary_id=row.id,
        version=row.version,
        created_at=now,
        changed=list(change.changed) if change else [],
        previous=change.previous if change else {},
        material=bool(change and change.material),
        severe=bool(change and change.severe),
        status=row.status,
        note=row.correction_note if change is None or "correction_note" in change.changed else None,
        urgent=urgent,
        reviewed=False,
    )
    session.add(version)
    return version


def flag_urgent(session: Session, row: Summary) -> None:
    """An unchanged record now flagged ``urgent``: its current version asks for a safety alert (once:
    a version already flagged is left alone)."""
    current = session.scalar(
        select(SummaryVersion).where(SummaryVersion.summary_id == row.id, SummaryVersion.version == row.version)
    )
    if current is not None and not current.urgent:
        current.urgent = True
        current.reviewed = False


def change_of(version: SummaryVersion) -> Change:
    """The Change a stored version describes."""
    return Change(
        changed=tuple(version.changed),
        previous=dict(version.previous),
        material=version.material,
        severe=version.severe,
        retracted=version.status == SummaryStatus.RETRACTED and "status" in version.changed,
    )


def _plain(value: Any) -> Any:
    """A column value as JSON (datetimes as ISO 8601)."""
    return value.isoformat() if isinstance(value, datetime) else value
