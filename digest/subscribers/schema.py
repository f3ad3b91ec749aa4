"""A subscriber as an operator or a sign-up form gives it, validated (email, specialties, time zone)."""

from __future__ import annotations

import re
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

from digest.config import DEFAULT_LOCALE, LOCALES
from digest.errors import Explained, Foreign, Invalid, Term
from digest.i18n import N_, supported
from digest.ingest.specialties import check_slugs
from digest.subscribers.models import Cadence, Edition
from digest.untrusted import refuse_invisible


@lru_cache(maxsize=1)
def iana_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def resolve_timezone(value: str) -> str | None:
    """The IANA zone ``value`` names: the exact name, the name in any letter case, or the city part
    alone ("berlin", "New York") when exactly one zone ends with it; None when it names none."""
    value = value.strip()
    if value in iana_timezones():
        return value
    return _zones_by_folded_name().get(value.replace(" ", "_").casefold())


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    names: dict[str, str] = {}
    cities: dict[str, list[str]] = {}
    for zone in iana_timezones():
        names[zone.casefold()] = zone
        cities.setdefault(zone.rsplit("/", 1)[-1].casefold(), []).append(zone)
    # A city is a name on its own only where it is not a full name already and not ambiguous.
    unique = {city: zones[0] for city, zones in cities.items() if len(zones) == 1 and city not in names}
    return {**unique, **names}


class InvalidAddress(Invalid):
    """An email address that is not one; the reason is email-validator's, in its English words in
    English and translated elsewhere (``email_reason``)."""


# What email-validator says about the commonest mistakes, in its words, marked so that they translate.
EMAIL_SENTENCES = (
    N_("An email address must have an @-sign."),
    N_("There must be something before the @-sign."),
    N_("The part after the @-sign is not valid. It should have a period."),
    N_("An email address cannot have two periods in a row."),
    N_("An email address cannot start with a period."),
    N_("An email address cannot end with a period."),
    N_("An email address cannot have a period immediately before the @-sign."),
    N_("An email address cannot have a period immediately after the @-sign."),
    N_("An email address cannot have a hyphen immediately after the @-sign."),
    N_("The email address contains an invalid character."),
    N_("There can't be anything after the email address."),
    N_("The part after the @-sign is a special-use or reserved name that cannot be used with email."),
    N_("The part after the @-sign is not valid. It is not within a valid top-level domain."),
)
# ... and those that name the characters at fault.
_EMAIL_PATTERNS = (
    (
        re.compile(r"The email address contains invalid characters before the @-sign: (?P<characters>.+)\."),
        N_("The email address contains invalid characters before the @-sign: %(characters)s."),
    ),
    (
        re.compile(r"The part after the @-sign contains invalid characters: (?P<characters>.+)\."),
        N_("The part after the @-sign contains invalid characters: %(characters)s."),
    ),
)


def email_reason(message: str) -> Explained | Foreign:
    """email-validator's ``message`` as it is in English and translated elsewhere (a reason it
    words otherwise: "This value is not valid." in the reader's language)."""
    for pattern, msgid in _EMAIL_PATTERNS:
        if (match := pattern.fullmatch(message)) is not None:
            return Explained(msgid, characters=match["characters"])
    return Foreign(message, N_("This is not a valid email address."))


def normalize_email(value: str) -> str:
    """Validate syntax (no DNS lookups) and return the normalized address, lower-cased."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(
            N_("invalid email address %(address)s: %(reason)s"), address=repr(value), reason=email_reason(str(exc))
        ) from None
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
    locale: str = DEFAULT_LOCALE  # the language of their emails and pages, one of LOCALES

    @field_validator("specialties")
    @classmethod
    def _specialties(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_slugs(value, (info.context or {}).get("specialties"))

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        locale = supported(value) if value.strip() else DEFAULT_LOCALE
        if locale is None:
            raise Invalid(
                N_("unknown locale %(locale)s: use one of %(locales)s"), locale=repr(value), locales=", ".join(LOCALES)
            )
        return locale

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone = resolve_timezone(value.strip() or "UTC")
        if zone is None:
            raise Invalid(N_("unknown time zone %(zone)s: use an IANA name such as Europe/Berlin"), zone=repr(value))
        return zone


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
    """Names end up in the To header: control and direction characters are refused (InputError
    naming the field), every line break and run of whitespace collapsed."""
    return " ".join(refuse_invisible(value, Term(N_("the name"))).split())
