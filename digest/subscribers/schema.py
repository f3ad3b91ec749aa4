"""A subscriber as an operator or a sign-up form gives it, validated (email, specialties, time zone)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from digest.ingest.specialties import check_slugs
from digest.subscribers.models import Cadence, Edition


@lru_cache(maxsize=1)
def iana_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def normalize_email(value: str) -> str:
    """Validate syntax (no DNS lookups) and return the normalized address, lower-cased."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address {value!r}: {exc}") from None
    return result.normalized.lower()


class PreferencesIn(BaseModel):
    """What a subscriber chooses for themselves: on the sign-up form and in the preference centre."""

    model_config = ConfigDict(extra="forbid")

    specialties: list[str] = Field(min_length=1)
    cadence: Cadence = Cadence.DAILY
    timezone: str = "UTC"
    edition: Edition = Edition.CLINICIAN
    send_hour: int = Field(default=7, ge=0, le=23)  # local hour the digest arrives
    send_weekday: int = Field(default=0, ge=0, le=6)  # weekly digests: 0 = Monday

    @field_validator("specialties")
    @classmethod
    def _specialties(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_slugs(value, (info.context or {}).get("specialties"))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        value = value.strip() or "UTC"
        if value not in iana_timezones():
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin")
        return value


class SubscriberIn(PreferencesIn):
    email: str
    name: Annotated[str, StringConstraints(max_length=200)] = ""

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return clean_name(value)


def clean_name(value: str) -> str:
    """Names end up in the To header: collapse every line break and run of whitespace, and drop
    other control characters (PostgreSQL refuses NUL in text)."""
    return " ".join("".join(c for c in value if c.isprintable() or c.isspace()).split())
