"""Public subscriber pages: sign-up with double opt-in, confirmation, preference centre, unsubscribe.

Every personal page is reached through a signed token bound to one subscriber and one purpose.
``GET /unsubscribe/{token}`` only shows a button, because link scanners follow GETs;
``POST /unsubscribe/{token}`` is RFC 8058 one-click: no cookie, login or CSRF token, 200 without
a redirect, harmless to repeat, effective as soon as the response is sent.

Each page is in the subscriber's locale once we know who they are (the token names them), and in
the visitor's (``?lang=``, then Accept-Language) before: the sign-up form and the link errors.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import session_scope
from digest.delivery.confirmation import CONFIRM_MAX_AGE
from digest.i18n import supported, translations
from digest.ingest.models import Specialty
from digest.selection.choices import Choices, describe_choices, timezone_options
from digest.subscribers.lifecycle import ConfirmOutcome, confirm, unsubscribe, update_preferences
from digest.subscribers.models import Cadence, ConsentMethod, Edition, Subscriber, SubscriberStatus
from digest.subscribers.relevance import (
    MAX_ITEMS_CHOICES,
    RelevanceIn,
    apply_relevance,
    current_relevance,
    study_type_choices,
)
from digest.subscribers.schema import PreferencesIn, SubscriberIn
from digest.subscribers.signup import request_signup
from digest.subscribers.tokens import BadToken, Purpose
from digest.web.deps import ServicesDep, client_address, invalid_link, page, request_locale
from digest.wiring import Services

router = APIRouter(tags=["subscribers"], default_response_class=HTMLResponse)

FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


def _specialty_choices(services: Services) -> list[tuple[str, str]]:
    with session_scope(services.sessions) as session:
        return [(s.slug, s.name) for s in session.scalars(select(Specialty).order_by(Specialty.name))]


def _known(session: Session) -> set[str]:
    return set(session.scalars(select(Specialty.slug)))


# Form fields in page order: the first one with an error takes the focus.
FIELD_ORDER = (
    "email",
    "specialties",
    "cadence",
    "send_hour",
    "send_weekday",
    "edition",
    "timezone",
    "locale",
    "min_evidence_level",
    "study_types",
    "max_items",
)


def _errors(exc: ValidationError, values: dict[str, Any], locale: str) -> dict[str, str]:
    """Field -> a message in plain words, for showing next to the field (never pydantic's own
    wording, such as "List should have at least 1 item after validation, not 0"), in page order."""
    found: set[str] = set()
    for err in exc.errors():
        found.add(str(err["loc"][0]) if err["loc"] else "form")
    ordered = sorted(found, key=lambda f: FIELD_ORDER.index(f) if f in FIELD_ORDER else len(FIELD_ORDER))
    gettext = translations(locale).gettext
    return {field: _plain_message(field, values, gettext) for field in ordered}


def _plain_message(field: str, values: dict[str, Any], gettext: Callable[[str], str]) -> str:
    value = str(values.get(field, "") or "").strip()
    if field == "email":
        if not value:
            return gettext("Enter your email address.")
        return gettext("Enter your email address in the form name@example.org.")
    if field == "specialties":
        if not values.get("specialties"):
            return gettext("Choose at least one specialty.")
        return gettext("Choose specialties from the list.")
    if field == "timezone":
        return gettext(
            "We do not know the time zone \u201c%(zone)s\u201d. Type a city, such as Berlin, and choose from the list."
        ) % {"zone": value}
    if field == "cadence":
        return gettext("Choose daily or weekly.")
    if field == "send_hour":
        return gettext("Choose a time of day from the list.")
    if field == "send_weekday":
        return gettext("Choose a day of the week from the list.")
    if field == "edition":
        return gettext("Choose the edition for clinicians or the one for patients and carers.")
    if field == "locale":
        return gettext("Choose a language from the list.")
    if field == "study_types":
        return gettext("Choose study types from the list.")
    if field in ("min_evidence_level", "max_items"):
        return gettext("Choose an answer from the list.")
    return gettext("Check this answer.")


def _choices(
    specialties: list[str],
    cadence: str,
    timezone: str,
    edition: str,
    send_hour: str,
    send_weekday: str,
    locale: str,
) -> dict[str, Any]:
    """The reader's choices as the forms post them (validated by PreferencesIn)."""
    return {
        "specialties": specialties,
        "cadence": cadence,
        "timezone": timezone,
        "edition": edition,
        "send_hour": send_hour,
        "send_weekday": send_weekday,
        "locale": locale,
    }


def _signup_form(
    request: Request,
    services: Services,
    values: dict[str, Any],
    errors: dict[str, str],
    locale: str,
    status: int = 200,
) -> HTMLResponse:
    title = translations(locale).gettext("Subscribe to %(list_name)s") % {"list_name": services.settings.list_name}
    return page(
        request,
        "signup",
        status_code=status,
        locale=locale,
        title=title,
        specialties=_specialty_choices(services),
        cadences=list(Cadence),
        editions=list(Edition),
        values=values,
        errors=errors,
        zones=timezone_options(services.clock()),
    )


@router.get("/", summary="Sign-up form (in the language of ?lang=, else the browser's)")
def signup_form(request: Request, services: ServicesDep) -> HTMLResponse:
    defaults = PreferencesIn.model_construct(specialties=[])
    locale = request_locale(request)
    return _signup_form(
        request,
        services,
        {
            "specialties": [],
            "cadence": defaults.cadence,
            "timezone": "",
            "edition": defaults.edition,
            "send_hour": defaults.send_hour,
            "send_weekday": defaults.send_weekday,
            "locale": locale,
        },
        {},
        locale,
    )


@router.post("/subscribe", summary="Sign up (sends a confirmation email: double opt-in)")
def subscribe(
    request: Request,
    services: ServicesDep,
    email: FormText = "",
    specialties: FormList = [],  # noqa: B006 (FastAPI copies defaults)
    cadence: FormText = Cadence.DAILY.value,
    timezone: FormText = "UTC",
    edition: FormText = Edition.CLINICIAN.value,
    send_hour: FormText = "7",
    send_weekday: FormText = "0",
    locale: FormText = "",
    website: FormText = "",  # a honeypot field hidden from people; bots fill it in
) -> HTMLResponse:
    choices = _choices(specialties, cadence, timezone, edition, send_hour, send_weekday, locale)
    values = {"email": email, **choices}
    shown = supported(locale) or request_locale(request)  # the language chosen, else the form's
    gettext = translations(shown).gettext
    now = services.clock()
    settings = services.settings
    with session_scope(services.sessions) as session:
        if not services.client_limiter.allow(session, client_address(request), now):
            return page(request, "too_many", status_code=429, locale=shown, title=gettext("Too many sign-ups"))
        try:
            data = SubscriberIn.model_validate({"email": email, **choices}, context={"specialties": _known(session)})
        except ValidationError as exc:
            session.rollback()
            return _signup_form(request, services, values, _errors(exc, values, shown), shown, status=400)
        subscriber_id = None
        if not website:
            subscriber_id = request_signup(
                session,
                data,
                client_address(request),
                now,
                per_address_per_day=settings.confirmations_per_address_per_day,
            )
    if subscriber_id is not None:
        services.queue.send_confirmation(subscriber_id)  # queued only after the commit above
    return _check_inbox(request, data.email, data.locale)


def _check_inbox(request: Request, email: str, locale: str) -> HTMLResponse:
    title = translations(locale).gettext("Check your inbox")
    return page(request, "check_inbox", locale=locale, title=title, email=email, valid_days=CONFIRM_MAX_AGE.days)


@router.get("/confirm/{token}", summary="Confirm a subscription (the link in the confirmation email)")
def confirm_subscription(request: Request, token: str, services: ServicesDep) -> HTMLResponse:
    now = services.clock()
    try:
        subscriber_id, issued_at = services.tokens.read_confirm(token, now, CONFIRM_MAX_AGE)
    except BadToken:
        return invalid_link(request)
    with session_scope(services.sessions) as session:
        result = confirm(session, subscriber_id, issued_at, now, ip=client_address(request))
        choices = _described(result.subscriber, now) if result.subscriber is not None else None
        locale = result.subscriber.locale if result.subscriber is not None else None
    if result.outcome == ConfirmOutcome.MISSING or locale is None:
        return invalid_link(request, 404)
    gettext = translations(locale).gettext
    if result.outcome == ConfirmOutcome.STALE:
        title = gettext("This confirmation link is out of date")
        return page(request, "stale_confirmation", locale=locale, title=title)
    preferences = f"/preferences/{services.tokens.make(Purpose.PREFERENCES, subscriber_id)}"
    return page(
        request,
        "confirmed",
        locale=locale,
        title=gettext("You are subscribed"),
        preferences_url=preferences,
        choices=choices,
    )


def _described(row: Subscriber, now: datetime) -> Choices:
    return describe_choices(
        [s.name for s in row.specialties],
        row.cadence,
        row.timezone,
        row.edition,
        row.send_hour,
        row.send_weekday,
        now,
        row.locale,
    )


def _preferences_page(
    request: Request,
    services: Services,
    row: Subscriber,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    saved: bool = False,
    status: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "preferences",
        status_code=status,
        locale=row.locale,
        title=translations(row.locale).gettext("Your preferences"),
        email=row.email,
        specialties=_specialty_choices(services),
        cadences=list(Cadence),
        editions=list(Edition),
        values=values,
        errors=errors,
        zones=timezone_options(services.clock()),
        saved=saved,
        unsubscribe_url=f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, row.id)}",
        study_types=_study_types(services),
        max_items_choices=MAX_ITEMS_CHOICES,
        data_url=f"/preferences/{services.tokens.make(Purpose.PREFERENCES, row.id)}",
    )


def _study_types(services: Services) -> list[str]:
    with session_scope(services.sessions) as session:
        return study_type_choices(session)


def _current(row: Subscriber) -> dict[str, Any]:
    """The subscriber's choices as the forms post them."""
    return {
        "specialties": [s.slug for s in row.specialties],
        "cadence": row.cadence,
        "timezone": row.timezone,
        "edition": row.edition,
        "send_hour": row.send_hour,
        "send_weekday": row.send_weekday,
        "locale": row.locale,
    }


def _form_values(row: Subscriber) -> dict[str, Any]:
    """The preference centre's values: the choices, whether the digest is paused, the relevance filters."""
    return {**_current(row), "paused": row.status == SubscriberStatus.PAUSED, **current_relevance(row)}


def _subscriber_with_preferences(
    request: Request, services: Services, session: Session, token: str
) -> Subscriber | HTMLResponse:
    """The active or paused subscriber a preferences link names, or the page to show instead
    (invalid link, unknown subscriber, or "you are not subscribed")."""
    try:
        subscriber_id = services.tokens.read(Purpose.PREFERENCES, token)
    except BadToken:
        return invalid_link(request)
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        return invalid_link(request, 404)
    if row.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
        title = translations(row.locale).gettext("You are not subscribed")
        return page(request, "not_subscribed", locale=row.locale, title=title, status=row.status)
    return row


@router.get("/preferences/{token}", summary="Preference centre")
def preferences_form(request: Request, token: str, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as session:
        row = _subscriber_with_preferences(request, services, session, token)
        if isinstance(row, HTMLResponse):
            return row
        return _preferences_page(request, services, row, _form_values(row), {})


@router.post(
    "/preferences/{token}",
    summary="Save preferences: specialties, cadence, time zone, pause, safety alerts, relevance filters",
)
def preferences_save(
    request: Request,
    token: str,
    services: ServicesDep,
    specialties: FormList = [],  # noqa: B006
    cadence: FormText = Cadence.DAILY.value,
    timezone: FormText = "UTC",
    edition: FormText = Edition.CLINICIAN.value,
    send_hour: FormText = "7",
    send_weekday: FormText = "0",
    locale: FormText = "",
    paused: FormText = "",
    safety_alerts: FormText = "",
    min_evidence_level: FormText = "",
    study_types: FormList = [],  # noqa: B006
    max_items: FormText = "",
) -> HTMLResponse:
    choices = _choices(specialties, cadence, timezone, edition, send_hour, send_weekday, locale)
    relevance = {
        "safety_alerts": bool(safety_alerts),
        "min_evidence_level": min_evidence_level or None,
        "study_types": study_types,
        "max_items": max_items or None,
    }
    values = {**choices, "paused": bool(paused), **relevance}
    with session_scope(services.sessions) as session:
        row = _subscriber_with_preferences(request, services, session, token)
        if isinstance(row, HTMLResponse):
            return row
        errors: dict[str, str] = {}
        try:
            prefs = PreferencesIn.model_validate(choices, context={"specialties": _known(session)})
        except ValidationError as exc:
            errors.update(_errors(exc, values, row.locale))
        try:
            wanted = RelevanceIn.model_validate(relevance)
        except ValidationError as exc:
            errors.update(_errors(exc, values, row.locale))
        if errors:
            return _preferences_page(request, services, row, values, errors, status=400)
        apply_relevance(row, wanted)  # first: the consent event records the choices as saved
        update_preferences(session, row, prefs, paused=bool(paused), now=services.clock(), ip=client_address(request))
        return _preferences_page(request, services, row, _form_values(row), {}, saved=True)


@router.get("/unsubscribe/{token}", summary="Unsubscribe page: one button, changes nothing")
def unsubscribe_page(request: Request, token: str, services: ServicesDep) -> HTMLResponse:
    try:
        subscriber_id = services.tokens.read(Purpose.UNSUBSCRIBE, token)
    except BadToken:
        return invalid_link(request)
    with session_scope(services.sessions) as session:
        row = session.get(Subscriber, subscriber_id)
        email = row.email if row else None
        locale = row.locale if row else request_locale(request)
        already = row is None or row.status == SubscriberStatus.UNSUBSCRIBED
    if already:
        return _unsubscribed(request, token, email, locale, known=row is not None)
    title = translations(locale).gettext("Unsubscribe")
    return page(request, "unsubscribe", locale=locale, title=title, email=email)


@router.post("/unsubscribe/{token}", summary="Unsubscribe (RFC 8058 one-click)")
def unsubscribe_now(
    request: Request,
    token: str,
    services: ServicesDep,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> HTMLResponse:
    """Accepts ``List-Unsubscribe=One-Click`` urlencoded or multipart (or no body at all, as the
    page's button may send); 200 with no redirect; committed before the response is sent."""
    try:
        subscriber_id = services.tokens.read(Purpose.UNSUBSCRIBE, token)
    except BadToken:
        return invalid_link(request)
    with session_scope(services.sessions) as session:
        email = unsubscribe(
            session,
            subscriber_id,
            services.clock(),
            source="one-click" if list_unsubscribe else "unsubscribe page",
            method=ConsentMethod.ONE_CLICK if list_unsubscribe else ConsentMethod.FORM,
            ip=client_address(request),
        )
        row = session.get(Subscriber, subscriber_id)
        locale = row.locale if row is not None else request_locale(request)
    # The address is None on a repeat (nothing changed); the way back is offered all the same.
    return _unsubscribed(request, token, email, locale, known=True)


def _unsubscribed(request: Request, token: str, email: str | None, locale: str, *, known: bool) -> HTMLResponse:
    """ "You are unsubscribed", with no Unsubscribe button, and a way back for a known subscriber."""
    return page(
        request,
        "unsubscribed",
        locale=locale,
        title=translations(locale).gettext("You are unsubscribed"),
        email=email,
        resubscribe_url=f"/resubscribe/{token}" if known else None,
    )


@router.post("/resubscribe/{token}", summary="Subscribe again with the same choices (sends a new confirmation)")
def resubscribe(request: Request, token: str, services: ServicesDep) -> HTMLResponse:
    """The way back from the unsubscribed page: the reader's last choices, confirmed by email again
    (double opt-in, as for a new sign-up; the same per-address limits apply). The unsubscribe token
    names the subscriber, so nobody else can start a re-subscription for them without their inbox."""
    try:
        subscriber_id = services.tokens.read(Purpose.UNSUBSCRIBE, token)
    except BadToken:
        return invalid_link(request)
    now = services.clock()
    with session_scope(services.sessions) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None:
            return invalid_link(request, 404)
        locale = row.locale
        if row.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            preferences = f"/preferences/{services.tokens.make(Purpose.PREFERENCES, row.id)}"
            return page(
                request,
                "confirmed",
                locale=locale,
                title=translations(locale).gettext("You are subscribed"),
                preferences_url=preferences,
                choices=_described(row, now),
            )
        email = row.email
        values = {"email": row.email, **_current(row)}
        try:
            data = SubscriberIn.model_validate({**values, "name": row.name}, context={"specialties": _known(session)})
        except ValidationError as exc:  # their old choices are no longer offered: choose again
            session.rollback()
            return _signup_form(request, services, values, _errors(exc, values, locale), locale, status=400)
        queued = request_signup(
            session,
            data,
            client_address(request),
            now,
            per_address_per_day=services.settings.confirmations_per_address_per_day,
        )
    if queued is not None:
        services.queue.send_confirmation(queued)
    return _check_inbox(request, email, locale)
