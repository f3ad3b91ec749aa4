"""The editor dashboard under /editor: log in, compose, preview, test-send, schedule, pause, resume
and cancel issues, browse subscribers, read each issue's figures.

Two routers: ``login_router`` (the login form and its POST) and ``router``, which carries the
authentication dependency for every route it holds, so no /editor page can be added without it.
Pages without a valid session redirect to /editor/login. Every POST (login and logout included)
must carry the session's CSRF token (digest.web.sessions); otherwise it is 403 and nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import anyio
import redis
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile as StarletteUpload

from digest.db import session_scope
from digest.delivery.circuit import open_circuits
from digest.dispatch import resume_campaign, send_issue
from digest.editors.models import Editor
from digest.editors.service import AccountDisabled, LoginFailed, authenticate, end_sessions
from digest.editors.throttle import LoginThrottle
from digest.errors import InvalidInput
from digest.i18n import N_, moment, number, short_moment, translations
from digest.ingest.models import Specialty, Summary
from digest.ingest.specialties import specialty_name
from digest.issues.figures import Figures, Tally, history, issue_figures, link_clicks, summary_clicks
from digest.issues.models import issue_specialties
from digest.issues.outlook import in_audience, outlook
from digest.issues.planning import pinned_ids
from digest.issues.preview import Preview, preview_issue, send_test
from digest.issues.runs import flow_state, recent_runs, run_detail, set_paused
from digest.issues.service import (
    IssueDraft,
    IssueError,
    cancel_issue,
    create_issue,
    delete_draft,
    duplicate_issue,
    get_campaign,
    pause_issue,
    schedule_issue,
    unschedule_issue,
    update_issue,
)
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus
from digest.subscribers.admin import SubscriberFilter, export_csv, filtered, suppress_by_editor, unsubscribe_by_editor
from digest.subscribers.models import Cadence, Edition, Subscriber, SubscriberStatus
from digest.subscribers.service import SubscriberReport, import_subscribers
from digest.web.archive import EMAIL_POLICY
from digest.web.charts import Series, bar_chart
from digest.web.deps import IssueId, ServicesDep, explain, get_services, page, page_gettext, request_locale
from digest.web.sessions import CSRF_FIELD, EditorSession, SessionCookies, check_csrf
from digest.web.tables import label_cells
from digest.wiring import Services

log = logging.getLogger(__name__)

LOGIN = "/editor/login"
RECENT_SUMMARIES = 60  # the pinned-summary picker lists this many of the newest summaries
SUBSCRIBERS_PER_PAGE = 50
MAX_PAGE = 1_000_000

# The words the dashboard shows for the values it stores (an issue's state, a subscriber's cadence...):
# ``label`` in the editor templates translates them.
LABELS: dict[str, str] = {
    "draft": N_("draft"),
    "scheduled": N_("scheduled"),
    "sending": N_("sending"),
    "paused": N_("paused"),
    "sent": N_("sent"),
    "cancelled": N_("cancelled"),
    "pending": N_("pending"),
    "active": N_("active"),
    "unsubscribed": N_("unsubscribed"),
    "daily": N_("daily"),
    "weekly": N_("weekly"),
    "clinician": N_("clinician"),
    "patient": N_("patient"),
    "invited": N_("invited"),
    "disabled": N_("disabled"),
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "alert": N_("alert"),
    "correction": N_("correction"),
}

FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]


class LoginRequired(Exception):
    """No valid editor session: pages redirect to the login form (see ``login_redirect``)."""


def cookies(request: Request) -> SessionCookies:
    jar: SessionCookies = request.app.state.session_cookies
    return jar


async def current_session(request: Request) -> EditorSession:
    """The signed-in editor's session; raises LoginRequired first, then 403 for a bad CSRF token."""
    session = cookies(request).read(request)
    if session is None or session.editor_id is None:
        raise LoginRequired()
    await check_csrf(request, session)
    request.state.editor_session = session
    return session


def current_editor(request: Request, session: Annotated[EditorSession, Depends(current_session)]) -> Editor:
    services = get_services(request)
    with session_scope(services.sessions) as db:
        editor = db.get(Editor, session.editor_id)
        if editor is None or editor.disabled or editor.session_version != session.version:
            raise LoginRequired()  # removed, disabled, logged out or its password changed since
        db.expunge(editor)
    return editor


EditorDep = Annotated[Editor, Depends(current_editor)]

login_router = APIRouter(
    prefix="/editor", tags=["editor"], default_response_class=HTMLResponse, include_in_schema=False
)
router = APIRouter(
    prefix="/editor",
    tags=["editor"],
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(current_editor)],
)


def login_redirect(request: Request, exc: LoginRequired) -> Response:
    """The app's handler for LoginRequired: back to the login form, then to where they were."""
    target = request.url.path if request.method == "GET" else "/editor/issues"
    return RedirectResponse(f"{LOGIN}?next={quote(target)}", status_code=303)


def _safe_next(value: str) -> str:
    """Only a path inside /editor: the login form is no open redirect."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/editor") or value.startswith("//") or "\\" in value:
        return "/editor/issues"
    return value


def editor_page(
    request: Request, name: str, editor: Editor | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    session: EditorSession | None = getattr(request.state, "editor_session", None)
    locale = request_locale(request)
    response = page(
        request,
        f"editor/{name}",
        status_code=status_code,
        locale=locale,
        editor=editor,
        csrf=session.csrf if session else "",
        csrf_field=CSRF_FIELD,
        label=labeller(locale),
        **context,
    )
    # Each cell names its column, so the tables stack into cards on a phone (digest/web/tables.py).
    response.body = label_cells(bytes(response.body).decode()).encode()
    response.headers["content-length"] = str(len(response.body))
    return response


def not_found(request: Request, editor: Editor, message: str) -> HTMLResponse:
    """The dashboard's 404: what was not found, in the page's language."""
    _ = page_gettext(request)
    title = _("Not found")
    return editor_page(request, "problem", editor, status_code=404, title=title, message=message)


def no_action(request: Request, editor: Editor, action: str) -> HTMLResponse:
    _ = page_gettext(request)
    return not_found(request, editor, _("There is no action %(action)s.") % {"action": repr(action)})


def labeller(locale: str) -> Callable[[object], str]:
    """``label(value)`` for a template: a stored value (``draft``, ``weekly``) in the page's language."""
    gettext = translations(locale).gettext

    def label(value: object) -> str:
        word = str(value)
        return gettext(LABELS[word]) if word in LABELS else word

    return label


def local(at: datetime | None, timezone: str, locale: str = "en") -> str:
    """A UTC time as the editor reads it: in their zone, with the zone's abbreviation, in ``locale``."""
    if at is None:
        return ""
    return moment(at.astimezone(ZoneInfo(timezone)), locale)


# -- login / logout -------------------------------------------------------------------------------


def public_page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the dashboard shown before login (login, password reset, set a password): its
    forms need a CSRF token too, so a visitor without a session gets an anonymous one."""
    jar = cookies(request)
    session = jar.read(request)
    fresh = session is None
    if session is None:
        session = jar.new(None)
    response = page(
        request,
        f"editor/{name}",
        status_code=status,
        editor=None,
        csrf_field=CSRF_FIELD,
        csrf=session.csrf,
        label=labeller(request_locale(request)),
        **context,
    )
    if fresh:
        jar.save(response, session)
    return response


def _login_form(
    request: Request, nxt: str, error: str = "", email: str = "", status: int = 200, retry_after: float = 0
) -> HTMLResponse:
    _ = page_gettext(request)
    title = _("Editor login")
    response = public_page(request, "login", status, title=title, error=error, email=email, next=_safe_next(nxt))
    if retry_after:
        response.headers["Retry-After"] = str(math.ceil(retry_after))
    return response


@login_router.get("/login")
def login_form(request: Request, next: str = "/editor/issues") -> HTMLResponse:
    return _login_form(request, next)


@login_router.post("/login", response_model=None)
async def login(request: Request, services: ServicesDep) -> Response:
    jar = cookies(request)
    session = jar.read(request)
    await check_csrf(request, session)
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    nxt = str(form.get("next", "/editor/issues"))
    throttle: LoginThrottle = request.app.state.login_throttle
    wait = await anyio.to_thread.run_sync(throttle.wait, request.client.host if request.client else "", email)
    _ = page_gettext(request)
    if wait > 0:
        error = _("Too many login attempts: try again in %(seconds)s seconds.") % {"seconds": math.ceil(wait)}
        return _login_form(request, nxt, error, email, status=429, retry_after=wait)
    try:
        # argon2 costs ~50 ms of CPU and 64 MiB: in the login thread, one at a time, so logins queue
        # there while the event loop and the request threads go on serving everything else.
        loop = asyncio.get_running_loop()
        editor_id, version = await loop.run_in_executor(
            request.app.state.login_executor, _authenticate, services, email, password
        )
    except AccountDisabled:
        return _login_form(request, nxt, _("This account is disabled: ask an administrator."), email, status=403)
    except LoginFailed:
        return _login_form(request, nxt, _("Wrong email address or password."), email, status=401)
    response = RedirectResponse(_safe_next(nxt), status_code=303)
    jar.save(response, jar.new(editor_id, version))  # a new session and CSRF token at login
    return response


def _authenticate(services: Services, email: str, password: str) -> tuple[int, int]:
    with session_scope(services.sessions) as db:
        editor = authenticate(db, email, password, services.clock())
        return editor.id, editor.session_version


@router.post("/logout", response_model=None)
def logout(request: Request, editor: EditorDep, services: ServicesDep) -> Response:
    """Ends this session and every other one of the account (a saved cookie stops working)."""
    with session_scope(services.sessions) as db:
        end_sessions(db, editor.id)
    response = RedirectResponse(LOGIN, status_code=303)
    cookies(request).clear(response)
    return response


# -- issues ---------------------------------------------------------------------------------------


@router.get("", response_model=None)
def home() -> Response:
    return RedirectResponse("/editor/issues", status_code=303)


def slowed(services: Services) -> tuple[float, float | None] | None:
    """(messages/s now, DIGEST_SEND_RATE or None) while a throttle keeps the shared rate below the
    configured one; None too when Redis does not answer (the page is shown without the line)."""
    try:
        rate = services.delivery.limiter.current()
    except redis.RedisError as exc:
        log.warning("send rate not available for the dashboard: %s", exc)
        return None
    ceiling = services.settings.send_rate
    if rate is None or (ceiling is not None and rate >= ceiling):
        return None
    return rate, ceiling


@router.get("/issues")
def issues_list(request: Request, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    """The dashboard: the automatic digests (their switch and runs) beside the editor's campaigns."""
    locale = request_locale(request)
    _ = translations(locale).gettext
    with session_scope(services.sessions) as db:
        rows = db.scalars(
            select(Issue)
            .where(Issue.kind == IssueKind.CAMPAIGN)
            .order_by(Issue.created_at.desc(), Issue.id.desc())
            .limit(200)
        ).all()
        figures = {r.id: issue_figures(db, r.id) for r in rows if r.planned_at is not None}
        past = history(db)
        stopped = open_circuits(db)
        runs = recent_runs(db)
        flow = flow_state(db)
        items = [
            {
                "id": r.id,
                "subject": r.subject,
                "status": r.status,
                "pause_reason": r.pause_reason,
                "scheduled": (
                    local(r.scheduled_at, editor.timezone, locale) if r.status == IssueStatus.SCHEDULED else ""
                ),
                "sent": local(r.sent_at, editor.timezone, locale),
                "figures": figures.get(r.id),
            }
            for r in rows
        ]
    sent, clickers = _("sent"), _("unique clickers")
    campaign_chart = bar_chart(
        _("Messages sent and unique clickers per campaign"),
        [f"#{f.issue_id}" for f in past],
        [Series(sent, [f.sent for f in past]), Series(clickers, [f.unique_clicks for f in past])],
        empty=_("nothing to show yet"),
    )
    oldest_first = list(reversed(runs))
    run_chart = bar_chart(
        _("Digests sent and unique clickers per run"),
        [r.period for r in oldest_first],
        [
            Series(sent, [r.sent for r in oldest_first]),
            Series(clickers, [r.unique_clicks for r in oldest_first]),
        ],
        empty=_("nothing to show yet"),
    )
    return editor_page(
        request,
        "issues",
        editor,
        title=_("Issues"),
        issues=items,
        chart=campaign_chart,
        past=past,
        runs=runs,
        run_chart=run_chart,
        flow=flow,
        flow_changed=local(flow.changed_at, editor.timezone, locale),
        stopped=stopped,
        slowed=slowed(services),
        planned=lambda r: local(r.first_planned, editor.timezone, locale),
    )


@router.get("/runs/{period_key}")
def run_page(request: Request, period_key: str, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    """One digest run (a cadence period): its figures, the same chart as a campaign's, clicks per
    summary and per link."""
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        detail = run_detail(db, period_key)
    if detail is None:
        return not_found(request, editor, _("No digest served %(period)s.") % {"period": repr(period_key)})
    labels, chart = _timeline_chart(detail.figures, editor.timezone, request_locale(request))
    # The heading's words: the period as the editor reads it, not the run's key.
    weekly = detail.figures.cadence == "weekly"
    heading = _("Weekly digest for %(period)s") if weekly else _("Daily digest for %(period)s")
    return editor_page(
        request,
        "figures",
        editor,
        title=heading % {"period": detail.figures.period},
        figures=detail.figures,
        run=detail.figures,
        chart=chart,
        labels=labels,
        summaries=detail.summaries,
        links=detail.links,
    )


def _flow_audience(db: Session) -> int:
    """Who the automatic digests go to: active subscribers."""
    return db.scalar(select(func.count(Subscriber.id)).where(Subscriber.status == SubscriberStatus.ACTIVE)) or 0


@router.get("/digests/{action}")
def confirm_flow(request: Request, action: str, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    """The confirmation step before pausing or resuming the automatic digests, with who it affects."""
    if action not in ("pause", "resume"):
        return no_action(request, editor, action)
    with session_scope(services.sessions) as db:
        audience = _flow_audience(db)
        paused = flow_state(db).paused
    locale = request_locale(request)
    _ = translations(locale).gettext
    count = {"count": number(audience, locale)}
    if action == "pause":
        title, button = _("Pause the automatic digests?"), _("Pause the automatic digests")
        message = _(
            "No daily or weekly digest will be planned for the %(count)s active subscriber(s) until you resume. "
            "Messages already on their way still go out; campaigns are not affected."
        )
        already = _("The automatic digests are already paused.") if paused else ""
    else:
        title, button = _("Resume the automatic digests?"), _("Resume the automatic digests")
        message = _(
            "The digests due now go to the %(count)s active subscriber(s) on the next dispatch, "
            "each subscriber once per period; periods that ended while paused are not sent again."
        )
        already = _("The automatic digests are already running.") if not paused else ""
    return editor_page(
        request,
        "confirm",
        editor,
        title=title,
        action=f"/editor/digests/{action}",
        button=button,
        back="/editor/issues",
        message=message % count,
        already=already,
    )


@router.post("/digests/{action}", response_model=None)
def set_flow(request: Request, action: str, editor: EditorDep, services: ServicesDep) -> Response:
    if action not in ("pause", "resume"):
        return no_action(request, editor, action)
    with session_scope(services.sessions) as db:
        set_paused(db, action == "pause", services.clock(), editor.id)
    return RedirectResponse("/editor/issues#digests", status_code=303)


def _timeline_chart(figures: Tally, timezone: str, locale: str) -> tuple[list[str], Markup]:
    """The hourly "sent and clicks" chart of a campaign or a run, with its labels in the editor's zone."""
    zone = ZoneInfo(timezone)
    _ = translations(locale).gettext
    labels = [short_moment(p.start.astimezone(zone), locale) for p in figures.timeline]
    chart = bar_chart(
        _("Messages sent and clicks per hour"),
        labels,
        [
            Series(_("sent"), [p.sent for p in figures.timeline]),
            Series(_("clicks"), [p.clicks for p in figures.timeline]),
        ],
        empty=_("nothing to show yet"),
    )
    return labels, chart


def _choices(db: Session) -> dict[str, Any]:
    specialties = [(s.slug, s.name) for s in db.scalars(select(Specialty).order_by(Specialty.name))]
    summaries = [
        (s.id, s.title, s.published_at.date().isoformat())
        for s in db.scalars(select(Summary).order_by(Summary.published_at.desc(), Summary.id).limit(RECENT_SUMMARIES))
    ]
    return {"specialties": specialties, "summaries": summaries}


def _values(db: Session, issue: Issue) -> dict[str, Any]:
    chosen = db.scalars(
        select(Specialty.slug)
        .join(issue_specialties, issue_specialties.c.specialty_id == Specialty.id)
        .where(issue_specialties.c.issue_id == issue.id)
    ).all()
    return {
        "subject": issue.subject,
        "preheader": issue.preheader,
        "intro": issue.intro,
        "audience": "all" if issue.audience_all else "specialties",
        "specialties": list(chosen),
        "pinned": pinned_ids(db, issue.id),
    }


def _audience_slugs(db: Session, issue_id: int) -> list[str]:
    """The specialties a preview can be shown as: the audience's, or every one for "all"."""
    chosen = _values(db, get_campaign(db, issue_id))["specialties"]
    return chosen or list(db.scalars(select(Specialty.slug).order_by(Specialty.name)))


def _compose(
    request: Request,
    services: Services,
    editor: Editor,
    values: dict[str, Any],
    issue_id: int | None,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    with session_scope(services.sessions) as db:
        choices = _choices(db)
    _ = page_gettext(request)
    title = _("Edit issue #%(id)s") % {"id": issue_id} if issue_id else _("New issue")
    return editor_page(
        request,
        "compose",
        editor,
        status_code=status,
        title=title,
        values=values,
        issue_id=issue_id,
        error=error,
        **choices,
    )


def _draft(
    subject: str, preheader: str, intro: str, audience: str, specialties: list[str], pinned: list[str]
) -> IssueDraft:
    chosen = tuple(specialties) if audience == "specialties" else ()
    return IssueDraft(
        subject=subject, preheader=preheader, intro=intro, specialties=chosen, pinned=tuple(p for p in pinned if p)
    )


def _compose_form(
    subject: FormText = "",
    preheader: FormText = "",
    intro: FormText = "",
    audience: FormText = "all",
    specialties: FormList = [],  # noqa: B006 (FastAPI copies defaults)
    pinned: FormList = [],  # noqa: B006
) -> dict[str, Any]:
    """The compose form's fields, as posted (shared by create and save)."""
    return {
        "subject": subject,
        "preheader": preheader,
        "intro": intro,
        "audience": audience,
        "specialties": specialties,
        "pinned": pinned,
    }


ComposeForm = Annotated[dict[str, Any], Depends(_compose_form)]


@router.get("/issues/new")
def new_issue(request: Request, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    values = {"subject": "", "preheader": "", "intro": "", "audience": "all", "specialties": [], "pinned": []}
    return _compose(request, services, editor, values, None)


@router.post("/issues", response_model=None)
def create(
    request: Request,
    editor: EditorDep,
    services: ServicesDep,
    values: ComposeForm,
) -> Response:
    try:
        with session_scope(services.sessions) as db:
            author = db.get(Editor, editor.id)
            issue_id = create_issue(db, _draft(**values), author, services.clock()).id
    except IssueError as exc:
        return _compose(request, services, editor, values, None, explain(request, exc), status=400)
    return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)


@router.get("/issues/{issue_id}/edit")
def edit_issue(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as db:
        try:
            values = _values(db, get_campaign(db, issue_id))
        except IssueError as exc:
            return not_found(request, editor, explain(request, exc))
    return _compose(request, services, editor, values, issue_id)


@router.post("/issues/{issue_id}", response_model=None)
def save_issue(
    request: Request,
    issue_id: IssueId,
    editor: EditorDep,
    services: ServicesDep,
    values: ComposeForm,
) -> Response:
    try:
        with session_scope(services.sessions) as db:
            update_issue(db, issue_id, _draft(**values))
    except IssueError as exc:
        return _compose(request, services, editor, values, issue_id, explain(request, exc), status=400)
    return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)


def _issue_page(
    request: Request,
    services: Services,
    editor: Editor,
    issue_id: int,
    *,
    specialty: str = "",
    subscriber: str = "",
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The issue's preview (desktop and phone side by side), warnings, test send and state buttons."""
    now = services.clock()
    locale = request_locale(request)
    _ = translations(locale).gettext
    with session_scope(services.sessions) as db:
        try:
            issue = get_campaign(db, issue_id)
        except IssueError as exc:
            return not_found(request, editor, explain(request, exc))
        values = _values(db, issue)
        choices = _choices(db)
        slugs = _audience_slugs(db, issue_id)
        as_specialty, subscriber_id = _preview_as(db, slugs, specialty, subscriber)
        if subscriber and subscriber_id is None:
            error = error or _("There is no subscriber %(email)s.") % {"email": subscriber}
        outside = subscriber_id is not None and not in_audience(db, issue_id, subscriber_id)
        preview, preview_error = None, ""
        try:
            preview = _preview(db, services, issue_id, now, as_specialty, subscriber_id)
        except IssueError as exc:
            preview_error = explain(request, exc)
        info = {
            "id": issue.id,
            "subject": issue.subject,
            "status": issue.status,
            "pause_reason": issue.pause_reason,
            "scheduled": (
                local(issue.scheduled_at, editor.timezone, locale) if issue.status == IssueStatus.SCHEDULED else ""
            ),
            "sent": local(issue.sent_at, editor.timezone, locale),
        }
        names = dict(choices["specialties"])
        audience = (
            _("All active subscribers")
            if issue.audience_all
            else ", ".join(specialty_name(names.get(s, s), locale) for s in values["specialties"])
        )
    view = outlook(services.sessions, issue_id, now, services.plan_options())
    return editor_page(
        request,
        "issue",
        editor,
        status_code=status,
        title=_("Issue #%(id)s: %(subject)s") % {"id": issue_id, "subject": info["subject"]},
        issue=info,
        audience=audience,
        preview=preview,
        preview_src=f"/editor/issues/{issue_id}/preview?"
        + urlencode({"specialty": as_specialty, "subscriber": subscriber if subscriber_id else ""}),
        preview_error=preview_error,
        specialty_choices=[(s, names.get(s, s)) for s in slugs],
        as_specialty=as_specialty,
        as_subscriber=subscriber if subscriber_id else "",
        default_send=now.astimezone(ZoneInfo(editor.timezone)).strftime("%Y-%m-%dT%H:%M"),
        notice=notice,
        error=error,
        names=names,
        outlook=view,
        outlook_text=view.describe(locale),
        outside=outside,
    )


def _preview_as(db: Session, slugs: list[str], specialty: str, subscriber: str) -> tuple[str, int | None]:
    """Whom the preview is for: the specialty asked for (else the audience's first) and the
    subscriber named by address, if there is one."""
    as_specialty = specialty if specialty in slugs else (slugs[0] if slugs else "")
    subscriber_id = None
    if subscriber:
        subscriber_id = db.scalar(
            select(Subscriber.id).where(func.lower(Subscriber.email) == subscriber.strip().lower())
        )
    return as_specialty, subscriber_id


def _preview(
    db: Session, services: Services, issue_id: int, now: datetime, as_specialty: str, subscriber_id: int | None
) -> Preview:
    return preview_issue(
        db,
        services.renderer,
        issue_id,
        now,
        services.plan_options(),
        specialty=None if subscriber_id else as_specialty,
        subscriber_id=subscriber_id,
    )


# The preview frames show the email under the email's own policy (its inline styles; no script),
# framed by the dashboard only. A srcdoc frame would inherit the page's policy, whose nonce the
# email's style attributes cannot carry: the editor would preview an unstyled email.
PREVIEW_POLICY = EMAIL_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


@router.get("/issues/{issue_id}/preview", response_class=HTMLResponse)
def issue_preview(
    request: Request,
    issue_id: IssueId,
    editor: EditorDep,
    services: ServicesDep,
    specialty: str = "",
    subscriber: str = "",
) -> HTMLResponse:
    """The email the issue page previews, on its own, for the page's desktop and phone frames."""
    with session_scope(services.sessions) as db:
        try:
            get_campaign(db, issue_id)
            as_specialty, subscriber_id = _preview_as(db, _audience_slugs(db, issue_id), specialty, subscriber)
            html = _preview(db, services, issue_id, services.clock(), as_specialty, subscriber_id).html
        except IssueError as exc:
            return not_found(request, editor, explain(request, exc))
    headers = {"Content-Security-Policy": PREVIEW_POLICY, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(html, headers=headers)


@router.get("/issues/{issue_id}")
def issue_page(
    request: Request,
    issue_id: IssueId,
    editor: EditorDep,
    services: ServicesDep,
    specialty: str = "",
    subscriber: str = "",
) -> HTMLResponse:
    return _issue_page(request, services, editor, issue_id, specialty=specialty, subscriber=subscriber)


@router.post("/issues/{issue_id}/test-send")
def test_send(
    request: Request,
    issue_id: IssueId,
    editor: EditorDep,
    services: ServicesDep,
    to: FormText = "",
    specialty: FormText = "",
    subscriber: FormText = "",
) -> HTMLResponse:
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        subscriber_id = (
            db.scalar(select(Subscriber.id).where(func.lower(Subscriber.email) == subscriber.strip().lower()))
            if subscriber
            else None
        )
        if subscriber_id is None and not specialty:  # as the preview shows by default
            specialty = next(iter(_audience_slugs(db, issue_id)), "")
        try:
            msg = send_test(
                db,
                services.composer,
                services.transport,
                issue_id,
                to,
                services.clock(),
                services.plan_options(),
                specialty=None if subscriber_id else specialty,
                subscriber_id=subscriber_id,
            )
        except IssueError as exc:
            return _issue_page(
                request,
                services,
                editor,
                issue_id,
                specialty=specialty,
                subscriber=subscriber,
                error=_("Test send failed: %(reason)s") % {"reason": explain(request, exc)},
                status=400,
            )
    return _issue_page(
        request,
        services,
        editor,
        issue_id,
        specialty=specialty,
        subscriber=subscriber,
        notice=_("A test copy was sent to %(email)s.") % {"email": msg.to_email},
    )


@router.post("/issues/{issue_id}/schedule", response_model=None)
def schedule(
    request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep, send_at: FormText = ""
) -> Response:
    try:
        at = datetime.fromisoformat(send_at)
    except ValueError:
        return _issue_page(
            request,
            services,
            editor,
            issue_id,
            error=_not_a_time(request, send_at),
            status=400,
        )
    return _act(
        request,
        services,
        editor,
        issue_id,
        lambda db: schedule_issue(db, issue_id, at, editor.timezone, services.clock()),
    )


def _not_a_time(request: Request, value: str) -> str:
    _ = page_gettext(request)
    return _("%(value)s is not a date and time (YYYY-MM-DD HH:MM)") % {"value": repr(value)}


CONFIRMED = ("schedule", "send-now", "pause", "cancel", "delete")


@router.get("/issues/{issue_id}/confirm/{action}")
def confirm_action(
    request: Request, issue_id: IssueId, action: str, editor: EditorDep, services: ServicesDep, send_at: str = ""
) -> HTMLResponse:
    """The step before schedule, send now, pause, cancel and delete: what it does and to how many people."""
    if action not in CONFIRMED:
        return no_action(request, editor, action)
    now = services.clock()
    with session_scope(services.sessions) as db:
        try:
            issue = get_campaign(db, issue_id)
        except IssueError as exc:
            return not_found(request, editor, explain(request, exc))
        subject, state = issue.subject, issue.status
        by_status = Counter(
            dict(
                db.execute(
                    select(Delivery.status, func.count()).where(Delivery.issue_id == issue_id).group_by(Delivery.status)
                ).all()
            )
        )
    view = outlook(services.sessions, issue_id, now, services.plan_options())
    locale = request_locale(request)
    t = translations(locale)
    _ = t.gettext
    reach = t.ngettext(
        "It is addressed to %(count)s subscriber: %(outlook)s.",
        "It is addressed to %(count)s subscribers: %(outlook)s.",
        view.audience,
    ) % {"count": number(view.audience, locale), "outlook": view.describe(locale)}
    if view.nothing:
        reach += " " + t.ngettext(
            "%(count)s gets nothing (nothing pinned, nothing new for them).",
            "%(count)s get nothing (nothing pinned, nothing new for them).",
            view.nothing,
        ) % {"count": number(view.nothing, locale)}
    sent, pending = number(by_status[DeliveryStatus.SENT], locale), number(by_status[DeliveryStatus.PENDING], locale)
    fields: dict[str, str] = {}
    if action == "schedule":
        try:
            at = datetime.fromisoformat(send_at)
        except ValueError:
            return _issue_page(request, services, editor, issue_id, error=_not_a_time(request, send_at), status=400)
        fields["send_at"] = send_at
        when = moment(at, locale).strip()  # naive: no zone abbreviation
        message = _("Schedule “%(subject)s” for %(when)s (%(zone)s)? %(reach)s") % {
            "subject": subject,
            "when": when,
            "zone": editor.timezone,
            "reach": reach,
        }
    elif action == "send-now":
        message = _("Send “%(subject)s” now? %(reach)s") % {"subject": subject, "reach": reach}
    elif action == "pause":
        message = _(
            "Pause “%(subject)s”? %(sent)s message(s) went out already; "
            "the %(pending)s still to send wait until you resume."
        ) % {"subject": subject, "sent": sent, "pending": pending}
    elif action == "cancel":
        message = (
            _(
                "Cancel “%(subject)s”? The %(pending)s message(s) not yet sent will never go out; "
                "%(sent)s already sent stay sent."
            )
            % {"subject": subject, "sent": sent, "pending": pending}
            if state in (IssueStatus.SENDING, IssueStatus.PAUSED)
            else _("Cancel “%(subject)s”? %(reach)s None of them will get it; this cannot be undone.")
            % {"subject": subject, "reach": reach}
        )
    else:
        message = _("Delete the draft “%(subject)s”? This cannot be undone.") % {"subject": subject}
    labels = {
        "schedule": _("Yes, schedule it"),
        "send-now": _("Yes, send it now"),
        "pause": _("Yes, pause sending"),
        "cancel": _("Yes, cancel the issue"),
        "delete": _("Yes, delete the draft"),
    }
    titles = {
        "schedule": N_("Confirm: schedule issue #%(id)s"),
        "send-now": N_("Confirm: send now issue #%(id)s"),
        "pause": N_("Confirm: pause issue #%(id)s"),
        "cancel": N_("Confirm: cancel issue #%(id)s"),
        "delete": N_("Confirm: delete issue #%(id)s"),
    }
    return editor_page(
        request,
        "confirm",
        editor,
        title=_(titles[action]) % {"id": issue_id},
        action=f"/editor/issues/{issue_id}/{action}",
        button=labels[action],
        danger=action in ("cancel", "delete"),
        back=f"/editor/issues/{issue_id}",
        message=message,
        fields=fields,
        already="",
    )


@router.post("/issues/{issue_id}/send-now", response_model=None)
def send_now(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> Response:
    """Start a draft or scheduled issue at once: plan its deliveries and queue them."""
    try:
        send_issue(services, issue_id)
    except IssueError as exc:
        return _issue_page(request, services, editor, issue_id, error=explain(request, exc), status=409)
    return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)


@router.post("/issues/{issue_id}/duplicate", response_model=None)
def duplicate(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> Response:
    try:
        with session_scope(services.sessions) as db:
            copy_id = duplicate_issue(db, issue_id, db.get(Editor, editor.id), services.clock()).id
    except IssueError as exc:
        return _issue_page(request, services, editor, issue_id, error=explain(request, exc), status=409)
    return RedirectResponse(f"/editor/issues/{copy_id}/edit", status_code=303)


@router.post("/issues/{issue_id}/delete", response_model=None)
def delete(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> Response:
    try:
        with session_scope(services.sessions) as db:
            delete_draft(db, issue_id)
    except IssueError as exc:
        return _issue_page(request, services, editor, issue_id, error=explain(request, exc), status=409)
    return RedirectResponse("/editor/issues", status_code=303)


@router.post("/issues/{issue_id}/{action}", response_model=None)
def state_action(
    request: Request, issue_id: IssueId, action: str, editor: EditorDep, services: ServicesDep
) -> Response:
    """unschedule / pause / resume / cancel. Resuming queues the open rows again (each sent once)."""
    if action == "resume":
        try:
            resume_campaign(services, issue_id)
        except IssueError as exc:
            return _issue_page(request, services, editor, issue_id, error=explain(request, exc), status=409)
        return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)
    moves = {"unschedule": unschedule_issue, "pause": pause_issue, "cancel": cancel_issue}
    if action not in moves:
        return no_action(request, editor, action)
    return _act(request, services, editor, issue_id, lambda db: moves[action](db, issue_id))


def _act(
    request: Request, services: Services, editor: Editor, issue_id: int, move: Callable[[Session], object]
) -> Response:
    """Run one state move; back to the issue page, or the page with the reason it was refused (409)."""
    try:
        with session_scope(services.sessions) as db:
            move(db)
    except IssueError as exc:
        return _issue_page(request, services, editor, issue_id, error=explain(request, exc), status=409)
    return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)


@router.get("/issues/{issue_id}/figures")
def figures_page(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        try:
            get_campaign(db, issue_id)
        except IssueError as exc:
            return not_found(request, editor, explain(request, exc))
        figures: Figures = issue_figures(db, issue_id)
        mine = Delivery.issue_id == issue_id
        summaries, links = summary_clicks(db, mine), link_clicks(db, mine)
    labels, chart = _timeline_chart(figures, editor.timezone, request_locale(request))
    return editor_page(
        request,
        "figures",
        editor,
        title=_("Figures for issue #%(id)s") % {"id": issue_id},
        figures=figures,
        run=None,
        chart=chart,
        labels=labels,
        summaries=summaries,
        links=links,
    )


# -- subscribers ----------------------------------------------------------------------------------


def _subscriber_filter(
    q: str = "", status: str = "", cadence: str = "", edition: str = "", specialty: str = ""
) -> SubscriberFilter:
    return SubscriberFilter(q=q, status=status, cadence=cadence, edition=edition, specialty=specialty)


FilterDep = Annotated[SubscriberFilter, Depends(_subscriber_filter)]
MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _subscribers(
    request: Request,
    editor: Editor,
    services: Services,
    where: SubscriberFilter,
    page_no: int = 1,
    *,
    notice: str = "",
    errors: Sequence[str] = (),
    status: int = 200,
) -> HTMLResponse:
    _ = page_gettext(request)
    locale = request_locale(request)
    page_no = min(max(1, page_no), MAX_PAGE)  # ?page=2**63 is an empty page, not an offset overflow
    with session_scope(services.sessions) as db:
        counts = dict(
            db.execute(
                select(Subscriber.status, func.count()).group_by(Subscriber.status).order_by(Subscriber.status)
            ).all()
        )
        matching = db.scalar(select(func.count()).select_from(filtered(where).subquery())) or 0
        rows = db.scalars(
            filtered(where).offset((page_no - 1) * SUBSCRIBERS_PER_PAGE).limit(SUBSCRIBERS_PER_PAGE + 1)
        ).all()
        people = [
            {
                "id": r.id,
                "email": r.email,
                "name": r.name,
                "status": r.status,
                "cadence": r.cadence,
                "edition": r.edition,
                "timezone": r.timezone,
                "specialties": ", ".join(specialty_name(s.name, locale) for s in r.specialties),
            }
            for r in rows[:SUBSCRIBERS_PER_PAGE]
        ]
        specialties = [(sp.slug, sp.name) for sp in db.scalars(select(Specialty).order_by(Specialty.name))]
    query = where.query()
    return editor_page(
        request,
        "subscribers",
        editor,
        status_code=status,
        title=_("Subscribers"),
        counts=counts,
        people=people,
        where=where,
        matching=matching,
        query=urlencode(query),
        page_no=page_no,
        more=len(rows) > SUBSCRIBERS_PER_PAGE,
        specialties=specialties,
        statuses=[s.value for s in SubscriberStatus],
        cadences=[c.value for c in Cadence],
        editions=[e.value for e in Edition],
        notice=notice,
        errors=errors,
    )


@router.get("/subscribers")
def subscribers_page(
    request: Request,
    editor: EditorDep,
    services: ServicesDep,
    where: FilterDep,
    page_no: Annotated[int, Query(alias="page")] = 1,
) -> HTMLResponse:
    return _subscribers(request, editor, services, where, page_no)


@router.get("/subscribers.csv", response_model=None)
def subscribers_export(editor: EditorDep, services: ServicesDep, where: FilterDep) -> Response:
    """The matching subscribers as CSV, in the import's columns (plus status)."""

    def rows() -> Iterator[str]:
        with session_scope(services.sessions) as db:
            yield from export_csv(db, where)

    stamp = services.clock().strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="subscribers-{stamp}.csv"'},
    )


@router.post("/subscribers/import", response_model=None)
async def subscribers_import(request: Request, editor: EditorDep, services: ServicesDep) -> Response:
    """Import a CSV (the CLI's format) from the browser; all or nothing unless "skip invalid" is ticked."""
    form = await request.form()
    upload = form.get("file")
    skip_invalid = form.get("skip_invalid") == "1"
    notice, errors, status = "", [], 200
    _ = page_gettext(request)
    data = await upload.read(MAX_IMPORT_BYTES + 1) if isinstance(upload, StarletteUpload) and upload.filename else b""
    if not data:
        errors, status = [_("Choose a CSV file to import.")], 400
    elif len(data) > MAX_IMPORT_BYTES:
        limit = MAX_IMPORT_BYTES // (1024 * 1024)
        too_big = _("The file is larger than %(limit)s MB: import it with `digest subscribers import`.")
        errors, status = [too_big % {"limit": limit}], 413
    else:
        assert isinstance(upload, StarletteUpload)
        name = upload.filename or "upload.csv"
        try:
            report = await anyio.to_thread.run_sync(partial(_import_upload, services, data, name, skip_invalid))
        except InvalidInput as exc:
            errors = [_("Nothing was imported. Fix these lines (or tick “skip invalid rows”):")]
            errors += [e.in_locale(request_locale(request)) for e in exc.errors[:50]]
            if len(exc.errors) > 50:
                errors.append(_("… and %(count)s more.") % {"count": len(exc.errors) - 50})
            status = 400
        else:
            notice = _("Imported %(name)s: %(created)s new, %(updated)s updated.") % {
                "name": name,
                "created": report.created,
                "updated": report.updated,
            }
            if report.skipped:
                notice += " " + _("%(count)s invalid row(s) skipped:") % {"count": len(report.skipped)}
            errors = [e.in_locale(request_locale(request)) for e in report.skipped[:50]]
    return await anyio.to_thread.run_sync(
        partial(
            _subscribers, request, editor, services, SubscriberFilter(), notice=notice, errors=errors, status=status
        )
    )


def _import_upload(services: Services, data: bytes, name: str, skip_invalid: bool) -> SubscriberReport:
    """Run the CLI's import over an uploaded file (errors name the file the editor chose)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(data)
        with session_scope(services.sessions) as db:
            return import_subscribers(db, path, skip_invalid=skip_invalid, source=name)


@router.get("/subscribers/{subscriber_id}/confirm/{action}")
def confirm_subscriber_action(
    request: Request, subscriber_id: IssueId, action: str, editor: EditorDep, services: ServicesDep
) -> HTMLResponse:
    """The step before unsubscribing or suppressing someone."""
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        row = db.get(Subscriber, subscriber_id)
        email = row.email if row else ""
    if action not in ("unsubscribe", "suppress") or not email:
        return not_found(request, editor, _("No such subscriber or action."))
    if action == "unsubscribe":
        title, button = _("Unsubscribe %(email)s?"), _("Yes, unsubscribe %(email)s")
        message = _("Unsubscribe %(email)s? They get nothing more, and only they can subscribe again.")
    else:
        title, button = _("Suppress %(email)s?"), _("Yes, suppress %(email)s")
        message = _(
            "Suppress %(email)s? Nothing will ever be sent to this address again (messages not yet sent are cancelled)."
        )
    who = {"email": email}
    return editor_page(
        request,
        "confirm",
        editor,
        title=title % who,
        action=f"/editor/subscribers/{subscriber_id}/{action}",
        button=button % who,
        danger=True,
        back="/editor/subscribers",
        message=message % who,
        fields={},
        already="",
    )


@router.post("/subscribers/{subscriber_id}/{action}", response_model=None)
def subscriber_action(
    request: Request, subscriber_id: IssueId, action: str, editor: EditorDep, services: ServicesDep
) -> Response:
    _ = page_gettext(request)
    if action not in ("unsubscribe", "suppress"):
        return not_found(request, editor, _("No such action."))
    with session_scope(services.sessions) as db:
        if action == "unsubscribe":
            email = unsubscribe_by_editor(db, subscriber_id, editor.email, services.clock())
        else:
            email = suppress_by_editor(db, subscriber_id, editor.email)
    if email is None:
        return not_found(request, editor, _("No such subscriber."))
    done = _("%(email)s is unsubscribed.") if action == "unsubscribe" else _("%(email)s is suppressed.")
    return _subscribers(request, editor, services, SubscriberFilter(q=email), notice=done % {"email": email})
