"""The summary record as it arrives (JSON), validated with pydantic against the known specialties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

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
    study: StudyIn | None = None
    outcomes: list[OutcomeIn] = Field(default_factory=list)
    safety: Text | None = None
    source_url: AnyHttpUrl | None = None

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
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

    def columns(self) -> dict[str, Any]:
        """The values for the Summary row (specialties are set separately)."""
        study = self.study or StudyIn()
        return {
            "title": self.title,
            "key_takeaway": self.key_takeaway,
            "summary": self.summary,
            "patient_summary": self.patient_summary,
            "study_type": study.type,
            "sample_size": study.sample_size,
            "evidence_level": study.evidence_level,
            "study_published": study.published,
            "outcomes": [o.model_dump(exclude_none=True) for o in self.outcomes],
            "safety": self.safety,
            "source_url": str(self.source_url) if self.source_url else None,
            "published_at": self.published_at,
        }
