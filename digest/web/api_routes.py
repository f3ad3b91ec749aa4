"""The JSON API beyond ingest: subscribers, summaries, issues and webhook endpoints, under /api/.

Every route needs an API key with its scope (digest/web/api_auth.py): 401 without a valid key, 403
without the scope. Subscribers are listed in id order with an opaque cursor (``next_cursor``: pass it
back as ``cursor``), so paging stays cheap and stable however long the list is. Creating a
subscriber either starts the double opt-in (a confirmation email, status ``pending``) or, with
``"confirmed": true``, records the operator's word for it; either way it is a consent event by
``api``. Every change emits the webhook events a change made on the pages would.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import session_scope
from digest.ingest.models import Specialty, Summary
from digest.ingest.models import SummaryVersion as VersionRow
from digest.integrations.models import WebhookDelivery, WebhookEndpoint
from digest.integrations.webhooks import EVENTS, new_secret
from digest.issues.figures import issue_figures
from digest.rights import erase_subscriber, export_subscriber
from digest.subscribers.consent import record_consent, subscriber_payload
from digest.subscribers.lifecycle import apply_preferences, unsubscribe
from digest.subscribers.models import (
    Cadence,
    ConsentAction,
    ConsentMethod,
    Edition,
    Subscriber,
    SubscriberStatus,
    subscriber_specialties,
)
from digest.subscribers.schema import PreferencesIn, SubscriberIn, clean_name
from digest.subscribers.service import upsert_subscriber
from digest.web.api_auth import require_scope
from digest.web.deps import IssueId, ServicesDep

router = APIRouter(prefix="/api", tags=["api"])

RowId = IssueId  # a row id in a path: the database's INTEGER range
SummaryId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
MAX_PAGE = 500


class Problem(BaseModel):
    detail: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        401: "missing or unknown API key",
        403: "the API key lacks the route's scope",
        404: "no such record",
        409: "the change conflicts with the record's state (suppressed, unsubscribed or erased)",
    }
    return {code: {"model": Problem, "description": what[code]} for code in (401, 403, *codes)}


# -- subscribers ----------------------------------------------------------------------------------

EXAMPLE_SUBSCRIBER: dict[str, Any] = {
    "id": 42,
    "email": "reader@example.org",
    "name": "Dr Ada Reader",
    "status": "active",
    "specialties": ["cardiology", "oncology"],
    "cadence": "weekly",
    "timezone": "Europe/Berlin",
    "edition": "clinician",
    "send_hour": 7,
    "send_weekday": 0,
    "locale": "en",
    "created_at": "2026-11-27T12:00:00+00:00",
    "confirmed_at": "2026-11-27T12:05:00+00:00",
    "unsubscribed_at": None,
}


class SubscriberOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SUBSCRIBER]})

    id: int
    email: str
    name: str
    status: str
    specialties: list[str]
    cadence: str
    timezone: str
    edition: str
    send_hour: int
    send_weekday: int
    locale: str  # the language of their emails and pages: one of digest.config.LOCALES
    created_at: str | None
    confirmed_at: str | None
    unsubscribed_at: str | None


class SubscriberCreate(SubscriberIn):
    """A new subscriber. ``confirmed: false`` (the default) sends the double opt-in email; ``true``
    adds them as confirmed on the operator's word."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "reader@example.org",
                    "name": "Dr Ada Reader",
                    "specialties": ["cardiology"],
                    "cadence": "weekly",
                    "timezone": "Europe/Berlin",
                    "confirmed": False,
                }
            ]
        },
    )

    confirmed: bool = False


class SubscriberPatch(BaseModel):
    """The choices to change; fields left out keep their value. ``paused`` pauses or resumes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"specialties": ["oncology"], "cadence": "daily", "paused": False}]},
    )

    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    specialties: list[str] | None = Field(default=None, min_length=1)
    cadence: Cadence | None = None
    timezone: str | None = None
    edition: Edition | None = None
    send_hour: int | None = Field(default=None, ge=0, le=23)
    send_weekday: int | None = Field(default=None, ge=0, le=6)
    locale: str | None = None
    paused: bool | None = None


class SubscriberPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [EXAMPLE_SUBSCRIBER], "next_cursor": "NDI"}]})

    items: list[SubscriberOut]
    next_cursor: str | None  # pass as ``cursor`` for the next page; null on the last page


def _out(row: Subscriber) -> SubscriberOut:
    data = subscriber_payload(row)
    return SubscriberOut(**data)


def _known(session: Session) -> set[str]:
    return set(session.scalars(select(Specialty.slug)))


def _subscriber(session: Session, subscriber_id: int) -> Subscriber:
    row = session.get(Subscriber, subscriber_id)
    if row is None or row.erased_at is not None:
        raise HTTPException(404, detail=f"there is no subscriber {subscriber_id}")
    return row


def _invalid(exc: ValidationError) -> HTTPException:
    return HTTPException(422, detail=[{k: e[k] for k in ("loc", "msg", "type")} for e in exc.errors()])


def _cursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if not decoded.isdigit() or len(decoded) > 10:
            raise ValueError(value)
        return int(decoded)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        # The shape of FastAPI's own 422 (HTTPValidationError), as /openapi.json declares it.
        problem = {"loc": ["query", "cursor"], "msg": "cursor is not one this API gave out", "type": "value_error"}
        raise HTTPException(422, detail=[problem]) from None


def _next_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


@router.get(
    "/subscribers",
    summary="List subscribers (filters, cursor paging in id order)",
    response_model=SubscriberPage,
    responses=_errors(),
    dependencies=[Depends(require_scope("subscribers:read"))],
)
def list_subscribers(
    services: ServicesDep,
    status: SubscriberStatus | None = None,
    specialty: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z0-9-]+$")] = None,
    cadence: Cadence | None = None,
    edition: Edition | None = None,
    email: Annotated[str | None, Query(max_length=320, pattern=r"^[^\x00-\x1f]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> SubscriberPage:
    after = _cursor(cursor)
    stmt = select(Subscriber).where(Subscriber.id > after, Subscriber.erased_at.is_(None))
    if status is not None:
        stmt = stmt.where(Subscriber.status == status)
    if cadence is not None:
        stmt = stmt.where(Subscriber.cadence == cadence)
    if edition is not None:
        stmt = stmt.where(Subscriber.edition == edition)
    if email is not None:
        stmt = stmt.where(Subscriber.email == email.strip().lower())
    if specialty is not None:
        stmt = stmt.where(
            Subscriber.id.in_(
                select(subscriber_specialties.c.subscriber_id)
                .join(Specialty, Specialty.id == subscriber_specialties.c.specialty_id)
                .where(Specialty.slug == specialty)
            )
        )
    with session_scope(services.sessions) as session:
        rows = session.scalars(stmt.order_by(Subscriber.id).limit(limit + 1)).all()
        items = [_out(r) for r in rows[:limit]]
    return SubscriberPage(items=items, next_cursor=_next_cursor(items[-1].id) if len(rows) > limit else None)


@router.post(
    "/subscribers",
    summary="Create a subscriber: double opt-in (a confirmation email) or confirmed by the operator",
    response_model=SubscriberOut,
    status_code=201,
    responses={**_errors(409), 200: {"model": SubscriberOut, "description": "the address existed: updated"}},
    dependencies=[Depends(require_scope("subscribers:write"))],
)
def create_subscriber(body: SubscriberCreate, services: ServicesDep, response: Response) -> SubscriberOut:
    now = services.clock()
    with session_scope(services.sessions) as session:
        try:
            data = SubscriberIn.model_validate(
                body.model_dump(exclude={"confirmed"}), context={"specialties": _known(session)}
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        try:
            row, created = upsert_subscriber(session, data, confirmed=body.confirmed, now=now, method=ConsentMethod.API)
        except ValueError as exc:
            raise HTTPException(409, detail=str(exc)) from None
        pending = row.status == SubscriberStatus.PENDING
        out = _out(row)
    if pending:
        services.queue.send_confirmation(out.id)  # after the commit, as the sign-up page does
    if not created:
        response.status_code = 200
    return out


@router.get(
    "/subscribers/{subscriber_id}",
    summary="Read a subscriber",
    response_model=SubscriberOut,
    responses=_errors(404),
    dependencies=[Depends(require_scope("subscribers:read"))],
)
def read_subscriber(subscriber_id: RowId, services: ServicesDep) -> SubscriberOut:
    with session_scope(services.sessions) as session:
        return _out(_subscriber(session, subscriber_id))


@router.patch(
    "/subscribers/{subscriber_id}",
    summary="Change a subscriber's choices (or pause and resume)",
    response_model=SubscriberOut,
    responses=_errors(404, 409),
    dependencies=[Depends(require_scope("subscribers:write"))],
)
def update_subscriber(subscriber_id: RowId, body: SubscriberPatch, services: ServicesDep) -> SubscriberOut:
    now = services.clock()
    with session_scope(services.sessions) as session:
        row = _subscriber(session, subscriber_id)
        if row.status == SubscriberStatus.UNSUBSCRIBED:
            raise HTTPException(409, detail="unsubscribed: only the reader can subscribe again")
        current = {
            "specialties": [s.slug for s in row.specialties],
            "cadence": row.cadence,
            "timezone": row.timezone,
            "edition": row.edition,
            "send_hour": row.send_hour,
            "send_weekday": row.send_weekday,
            "locale": row.locale,
        }
        changes = body.model_dump(exclude_unset=True, exclude={"name", "paused"})
        try:
            prefs = PreferencesIn.model_validate({**current, **changes}, context={"specialties": _known(session)})
        except ValidationError as exc:
            raise _invalid(exc) from None
        apply_preferences(session, row, prefs)
        if body.name is not None:
            row.name = clean_name(body.name)
        if body.paused is not None and row.status != SubscriberStatus.PENDING:
            row.status = SubscriberStatus.PAUSED if body.paused else SubscriberStatus.ACTIVE
        session.flush()
        record_consent(session, row, ConsentAction.PREFERENCES, ConsentMethod.API, now)
        return _out(row)


@router.post(
    "/subscribers/{subscriber_id}/unsubscribe",
    summary="Unsubscribe a subscriber at once (harmless to repeat)",
    response_model=SubscriberOut,
    responses=_errors(404),
    dependencies=[Depends(require_scope("subscribers:write"))],
)
def unsubscribe_subscriber(subscriber_id: RowId, services: ServicesDep) -> SubscriberOut:
    with session_scope(services.sessions) as session:
        _subscriber(session, subscriber_id)
        unsubscribe(session, subscriber_id, services.clock(), source="api", method=ConsentMethod.API)
    with session_scope(services.sessions) as session:
        return _out(_subscriber(session, subscriber_id))


@router.delete(
    "/subscribers/{subscriber_id}",
    summary="Erase a subscriber's personal data (the address stays only as a hashed suppression entry)",
    status_code=204,
    response_class=Response,
    responses=_errors(404),
    dependencies=[Depends(require_scope("subscribers:write"))],
)
def erase(subscriber_id: RowId, services: ServicesDep) -> Response:
    with session_scope(services.sessions) as session:
        erase_subscriber(session, _subscriber(session, subscriber_id), services.clock(), source="api")
    return Response(status_code=204)


@router.get(
    "/subscribers/{subscriber_id}/export",
    summary="Everything held about a subscriber (the reader's data export)",
    responses={
        **_errors(404),
        200: {
            "description": "profile, choices, consent events, deliveries with their summaries, clicks",
            "content": {
                "application/json": {
                    "example": {
                        "profile": {"id": 42, "email": "reader@example.org"},
                        "choices": {"specialties": ["cardiology"]},
                        "consent_events": [
                            {"at": "2026-11-27T12:00:00+00:00", "action": "signup", "method": "form", "ip": "192.0.2.4"}
                        ],
                        "deliveries": [],
                        "clicks": [],
                    }
                }
            },
        },
    },
    dependencies=[Depends(require_scope("subscribers:read"))],
)
def export(subscriber_id: RowId, services: ServicesDep) -> dict[str, Any]:
    with session_scope(services.sessions) as session:
        return export_subscriber(session, _subscriber(session, subscriber_id), services.clock())


# -- summaries ------------------------------------------------------------------------------------

EXAMPLE_SUMMARY: dict[str, Any] = {
    "id": "nejm-2026-0412",
    "title": "Colchicine after myocardial infarction",
    "key_takeaway": "Low-dose colchicine cut recurrent ischaemic events by a quarter (HR 0.77).",
    "specialties": ["cardiology"],
    "language": "en",
    "status": "corrected",
    "correction_note": "The hazard ratio was mistyped as 0.07; it is 0.77.",
    "version": 3,
    "published_at": "2026-11-20T08:00:00+00:00",
    "updated_at": "2026-11-21T09:30:00+00:00",
}


class SummaryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_SUMMARY]})

    id: str
    title: str
    key_takeaway: str
    summary: str | None = None
    patient_summary: str | None = None
    specialties: list[str]
    study: dict[str, Any] | None = None
    outcomes: list[dict[str, Any]] = []
    safety: str | None = None
    source_url: str | None = None
    language: str  # the language it is written in (summaries are never translated)
    status: str  # published, corrected or retracted
    correction_note: str | None = None  # what was corrected, or why it was retracted
    version: int  # the current version: GET /api/summaries/{id}/versions lists them all
    published_at: datetime
    updated_at: datetime


class SummaryVersion(BaseModel):
    """One version: what changed from the one before (record fields, with their earlier values),
    whether readers of the earlier version are told (``material``; false: a cosmetic change), the
    summary's status then and the correction note it came with."""

    version: int
    recorded_at: datetime
    changed: list[str]  # record fields, e.g. ["key_takeaway", "status"]; empty for the first version
    previous: dict[str, Any]  # the changed fields' values before this version
    material: bool
    status: str
    note: str | None


EXAMPLE_VERSIONS: list[Any] = [  # JSON, as the answer shows it
    {
        "version": 3,
        "recorded_at": "2026-11-21T09:30:00+00:00",
        "changed": ["key_takeaway", "status", "correction_note"],
        "previous": {
            "key_takeaway": "Low-dose colchicine cut recurrent ischaemic events by a quarter (HR 0.07).",
            "status": "published",
            "correction_note": None,
        },
        "material": True,
        "status": "corrected",
        "note": "The hazard ratio was mistyped as 0.07; it is 0.77.",
    },
    {
        "version": 2,
        "recorded_at": "2026-11-20T15:10:00+00:00",
        "changed": ["summary"],
        "previous": {"summary": "A randomised, double-blind trial in 4,745 patients."},
        "material": False,
        "status": "published",
        "note": None,
    },
    {
        "version": 1,
        "recorded_at": "2026-11-20T08:00:00+00:00",
        "changed": [],
        "previous": {},
        "material": False,
        "status": "published",
        "note": None,
    },
]


class SummaryVersions(BaseModel):
    """Every recorded version of a summary, newest first (each ingest that changes it adds one)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "nejm-2026-0412", "version": 3, "versions": EXAMPLE_VERSIONS}]}
    )

    id: str
    version: int  # the current version
    versions: list[SummaryVersion]


def _summary(session: Session, summary_id: str) -> SummaryOut:
    row = session.get(Summary, summary_id)
    if row is None:
        raise HTTPException(404, detail=f"there is no summary {summary_id!r}")
    study = {
        "type": row.study_type,
        "sample_size": row.sample_size,
        "evidence_level": row.evidence_level,
        "published": row.study_published,
    }
    return SummaryOut(
        id=row.id,
        title=row.title,
        key_takeaway=row.key_takeaway,
        summary=row.summary,
        patient_summary=row.patient_summary,
        specialties=[s.slug for s in row.specialties],
        study=study if any(v is not None for v in study.values()) else None,
        outcomes=row.outcomes or [],
        safety=row.safety,
        source_url=row.source_url,
        language=row.language,
        status=row.status,
        correction_note=row.correction_note,
        version=row.version,
        published_at=row.published_at,
        updated_at=row.updated_at,
    )


@router.get(
    "/summaries/{summary_id}",
    summary="Read a summary",
    response_model=SummaryOut,
    responses=_errors(404),
    dependencies=[Depends(require_scope("summaries:read"))],
)
def read_summary(summary_id: SummaryId, services: ServicesDep) -> SummaryOut:
    with session_scope(services.sessions) as session:
        return _summary(session, summary_id)


@router.get(
    "/summaries/{summary_id}/versions",
    summary="A summary's versions, newest first",
    response_model=SummaryVersions,
    responses=_errors(404),
    dependencies=[Depends(require_scope("summaries:read"))],
)
def summary_versions(summary_id: SummaryId, services: ServicesDep) -> SummaryVersions:
    """The versions stored by each ingest that changed the summary (digest/ingest/versions.py), as
    the summary's page shows them."""
    with session_scope(services.sessions) as session:
        current = _summary(session, summary_id)
        rows = session.scalars(
            select(VersionRow).where(VersionRow.summary_id == summary_id).order_by(VersionRow.version.desc())
        ).all()
        versions = [
            SummaryVersion(
                version=v.version,
                recorded_at=v.created_at,
                changed=list(v.changed),
                previous=dict(v.previous),
                material=v.material,
                status=v.status,
                note=v.note,
            )
            for v in rows
        ]
    return SummaryVersions(id=current.id, version=current.version, versions=versions)


# -- issues ---------------------------------------------------------------------------------------


class IssueOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "subject": "Cardiology: 3 new summaries",
                    "status": "sent",
                    "sent_at": "2026-11-27T07:00:00+00:00",
                    "figures": {
                        "recipients": 1200,
                        "sent": 1190,
                        "failed": 4,
                        "cancelled": 6,
                        "pending": 0,
                        "bounced": 3,
                        "complaints": 1,
                        "unsubscribes": 5,
                        "clicks": 410,
                        "unique_clicks": 302,
                        "click_rate": 0.2538,
                    },
                }
            ]
        }
    )

    id: int
    subject: str
    status: str
    sent_at: datetime | None
    figures: dict[str, float]


@router.get(
    "/issues/{issue_id}",
    summary="Read an issue and its figures",
    response_model=IssueOut,
    responses=_errors(404),
    dependencies=[Depends(require_scope("issues:read"))],
)
def read_issue(issue_id: IssueId, services: ServicesDep) -> IssueOut:
    with session_scope(services.sessions) as session:
        try:
            f = issue_figures(session, issue_id)
        except LookupError:
            raise HTTPException(404, detail=f"there is no issue {issue_id}") from None
    counts = ("recipients", "sent", "failed", "cancelled", "pending", "bounced", "complaints", "unsubscribes")
    figures: dict[str, float] = {name: getattr(f, name) for name in (*counts, "clicks", "unique_clicks")}
    figures["click_rate"] = round(f.click_rate, 4)
    return IssueOut(id=f.issue_id, subject=f.subject, status=f.status, sent_at=f.sent_at, figures=figures)


# -- webhook endpoints ----------------------------------------------------------------------------

EventName = Annotated[str, StringConstraints(pattern="^(" + "|".join(e.replace(".", r"\.") for e in EVENTS) + ")$")]


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.org/hooks/digest",
                    "events": ["subscribed", "unsubscribed"],
                    "description": "CRM",
                }
            ]
        },
    )

    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00-\x1f]+$", max_length=2000)]
    events: list[EventName] = Field(min_length=1)
    description: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] = ""


class EndpointOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "url": "https://crm.example.org/hooks/digest",
                    "events": ["subscribed", "unsubscribed"],
                    "description": "CRM",
                    "active": True,
                    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                }
            ]
        }
    )

    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    secret: str | None = None  # only in the answer that created it


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 91,
                    "message_id": "msg_5f1c0a9e2b7d4c3a1e0f9b8c",
                    "event": "unsubscribed",
                    "status": "failed",
                    "attempts": 8,
                    "last_status_code": 500,
                    "last_error": "answered 500",
                    "created_at": "2026-11-27T12:00:00+00:00",
                    "delivered_at": None,
                }
            ]
        }
    )

    id: int
    message_id: str
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _endpoint_out(row: WebhookEndpoint, *, secret: bool = False) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        events=row.events.split(),
        description=row.description,
        active=row.active,
        secret=row.secret if secret else None,
    )


@router.post(
    "/webhooks",
    summary="Register a webhook endpoint (the answer carries its signing secret, once)",
    response_model=EndpointOut,
    status_code=201,
    responses=_errors(),
    dependencies=[Depends(require_scope("webhooks:write"))],
)
def add_endpoint(body: EndpointIn, services: ServicesDep) -> EndpointOut:
    with session_scope(services.sessions) as session:
        row = WebhookEndpoint(
            url=body.url,
            secret=new_secret(),
            events=" ".join(sorted(set(body.events))),
            description=body.description,
            created_at=services.clock(),
        )
        session.add(row)
        session.flush()
        return _endpoint_out(row, secret=True)


@router.get(
    "/webhooks",
    summary="List webhook endpoints",
    response_model=list[EndpointOut],
    responses=_errors(),
    dependencies=[Depends(require_scope("webhooks:write"))],
)
def list_endpoints(services: ServicesDep) -> list[EndpointOut]:
    with session_scope(services.sessions) as session:
        return [_endpoint_out(r) for r in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))]


@router.delete(
    "/webhooks/{endpoint_id}",
    summary="Remove a webhook endpoint (its undelivered events are dropped)",
    status_code=204,
    response_class=Response,
    responses=_errors(404),
    dependencies=[Depends(require_scope("webhooks:write"))],
)
def remove_endpoint(endpoint_id: RowId, services: ServicesDep) -> Response:
    with session_scope(services.sessions) as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        if row is None:
            raise HTTPException(404, detail=f"there is no webhook endpoint {endpoint_id}")
        session.delete(row)
    return Response(status_code=204)


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    summary="An endpoint's latest deliveries, newest first (status, attempts, last error)",
    response_model=list[WebhookDeliveryOut],
    responses=_errors(404),
    dependencies=[Depends(require_scope("webhooks:write"))],
)
def endpoint_deliveries(
    endpoint_id: RowId, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100
) -> list[WebhookDeliveryOut]:
    with session_scope(services.sessions) as session:
        if session.get(WebhookEndpoint, endpoint_id) is None:
            raise HTTPException(404, detail=f"there is no webhook endpoint {endpoint_id}")
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        return [WebhookDeliveryOut.model_validate(r, from_attributes=True) for r in rows]
