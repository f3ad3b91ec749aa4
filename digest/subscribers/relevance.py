"""Reader relevance controls (preference centre): the weakest evidence level wanted, the study types
wanted, at most N summaries per digest, and whether urgent safety alerts come.

Selection honours the first three in SQL (digest/selection/picker.py); each item's "why you got this"
line names them (``relevance_line``), so a reader sees why a digest is shorter than another's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.config import DEFAULT_LOCALE
from digest.errors import Invalid
from digest.i18n import N_, translations
from digest.ingest.models import Summary
from digest.subscribers.models import Subscriber

SEPARATOR = "|"
MAX_ITEMS_CHOICES = (1, 2, 3, 5, 8, 10, 15, 20)


class RelevanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    safety_alerts: bool = True
    min_evidence_level: int | None = Field(default=None, ge=1, le=5)
    study_types: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]] = []
    max_items: int | None = Field(default=None, ge=1, le=50)

    @field_validator("study_types")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        if any(SEPARATOR in v for v in value):
            raise Invalid(N_("a study type may not contain %(separator)s"), separator=repr(SEPARATOR))
        return sorted({v.lower() for v in value})


def apply_relevance(row: Subscriber, relevance: RelevanceIn) -> None:
    row.safety_alerts = relevance.safety_alerts
    row.min_evidence_level = relevance.min_evidence_level
    row.study_types = SEPARATOR.join(relevance.study_types) or None
    row.max_items = relevance.max_items


def current_relevance(row: Subscriber) -> dict[str, object]:
    return {
        "safety_alerts": row.safety_alerts,
        "min_evidence_level": row.min_evidence_level,
        "study_types": split_types(row.study_types),
        "max_items": row.max_items,
    }


def split_types(value: str | None) -> list[str]:
    return [t for t in (value or "").split(SEPARATOR) if t]


def study_type_choices(session: Session) -> list[str]:
    """The study types summaries have (lower case), for the preference centre's checkboxes."""
    return sorted(
        t
        for t in session.scalars(
            select(func.lower(Summary.study_type)).where(Summary.study_type.is_not(None)).distinct()
        )
        if t
    )


def relevance_line(
    min_evidence_level: int | None, study_types: str | None, max_items: int | None, locale: str = DEFAULT_LOCALE
) -> str:
    """The reader's own filters in words, for the "why you got this" line ("" when they set none)."""
    gettext = translations(locale).gettext
    parts = []
    if min_evidence_level is not None:
        parts.append(
            gettext("evidence level 1")
            if min_evidence_level == 1
            else gettext("evidence level %(level)s or stronger") % {"level": min_evidence_level}
        )
    types = split_types(study_types)
    if types:
        either = " " + gettext("or") + " "
        parts.append(gettext("%(types)s only") % {"types": either.join(types)})
    if max_items is not None:
        parts.append(gettext("at most %(count)s per digest") % {"count": max_items})
    return gettext("your filters: %(filters)s") % {"filters": ", ".join(parts)} if parts else ""
