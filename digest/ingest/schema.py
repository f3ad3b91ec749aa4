"""The summary record as it arrives (JSON), validated with pydantic against the known specialties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from digest.ingest.specialties import check_slugs

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class StudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Line | None = None
    sample_size: int | None = Field(default=None, ge=1)
    evidence_level: int | None = Field(default=None, ge=1, le=5)
    published: Annotated[str, StringConstraints(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")] | None = None


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Line
    measure: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    p: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | float | None = None

    @model_validator(mode="after")
    def _ci_brackets_value(self) -> OutcomeIn:
        if self.ci_low is not None and self.ci_high is not None and not self.ci_low <= self.value <= self.ci_high:
            raise ValueError(f"confidence interval {self.ci_low}-{self.ci_high} does not contain {self.value}")
        return self


class SummaryIn(BaseModel):
    """One summary record. Unknown fields are rejected so that typos do not vanish silently."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[\w.:-]+$")]
    title: Line
    key_takeaway: Text
    specialties: list[str] = Field(min_length=1)
    published_at: datetime
    summary: Text | None = None
    patient_summary: Text | None = None
    patient_title: Line | None = None  # plain-language title for the patient edition
    study: StudyIn | None = None
    outcomes: list[OutcomeIn] = Field(default_factory=list)
    safety: Text | None = None
    source_url: AnyHttpUrl | None = None
    # The language the summary is written in, as an ISO 639 code ("en", "es"): it stays in it, and
    # a reader whose locale it is gets it before others of the same evidence level.
    language: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[a-zA-Z]{2,3}$")] = "en"
    # Corrections (docs/corrections.md). All optional: a record without them is "published".
    status: Literal["published", "corrected", "retracted"] = "published"
    correction_note: Text | None = Field(default=None, validate_default=True)  # checked even when left out
    # True: this change must be told to readers of the earlier version whatever changed; False:
    # a change of the patient section or a "corrected" status is cosmetic. Never lowers a change of
    # the key takeaway, outcomes or safety, or a retraction (digest/ingest/versions.py). Unset:
    # decided by what changed.
    material_change: bool | None = None
    # Send this summary now as a safety alert to the subscribers of its specialties.
    urgent: bool = False

    @field_validator("title", "patient_title")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # A title becomes part of a Subject header: it may never carry a line break.
        return " ".join(value.split())

    @field_validator("specialties")
    @classmethod
    def _known_specialties(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_slugs(value, (info.context or {}).get("specialties"))

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("published_at needs a time zone (for example 2026-01-20T09:00:00Z)")
        return value.astimezone(UTC)

    @field_validator("correction_note")
    @classmethod
    def _note_with_status(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (status is declared, so validated, before it): the error names the field.
        status = info.data.get("status", "published")
        if status != "published" and not value:
            raise ValueError(f"a {status} summary needs a correction_note saying what changed and why")
        return value

    def columns(self) -> dict[str, Any]:
        """The values for the Summary row (specialties are set separately)."""
        study = self.study or StudyIn()
        return {
            "title": self.title,
            "key_takeaway": self.key_takeaway,
            "summary": self.summary,
            "patient_summary": self.patient_summary,
            "patient_title": self.patient_title,
            "study_type": study.type,
            "sample_size": study.sample_size,
            "evidence_level": study.evidence_level,
            "study_published": study.published,
            "outcomes": [o.model_dump(exclude_none=True) for o in self.outcomes],
            "safety": self.safety,
            "source_url": str(self.source_url) if self.source_url else None,
            "language": self.language,
            "published_at": self.published_at,
            "status": self.status,
            "correction_note": self.correction_note,
        }
