"""The editor dashboard under /editor: log in, compose, preview, test-send, schedule, pause, resume
and cancel issues, browse subscribers, read each issue's figures.

Two routers: ``login_router`` (the login form and its POST) and ``router``, which carries the
authentication dependency for every route it holds, so no /editor page can be added without it.
Pages without a valid session redirect to /editor/login. Every POST (login and logout included)
must carry the session's CSRF token (digest.web.sessions); otherwise it is 403 and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.db import session_scope
from digest.dispatch import resume_campaign
from digest.editors.models import Editor
from digest.editors.service import LoginFailed, LoginLocked, authenticate
from digest.ingest.models import Specialty, Summary
from digest.issues.figures import Figures, history, issue_figures
from digest.issues.models import issue_specialties
from digest.issues.planning import pinned_ids
from digest.issues.preview import preview_issue, send_test
from digest.issues.service import (
    IssueDraft,
    IssueError,
    cancel_issue,
    create_issue,
    get_campaign,
    pause_issue,
    schedule_issue,
    unschedule_issue,
    update_issue,
)
from digest.ledger.models import Issue, IssueKind
from digest.subscribers.models import Subscriber
from digest.web.charts import Series, bar_chart
from digest.web.deps import IssueId, ServicesDep, get_services, page
from digest.web.sessions import CSRF_FIELD, EditorSession, SessionCookies, check_csrf
from digest.wiring import Services

LOGIN = "/editor/login"
RECENT_SUMMARIES = 60  # the pinned-summary picker lists this many of the newest summaries
SUBSCRIBERS_PER_PAGE = 50

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
        if editor is None:  # the account was removed since
            raise LoginRequired()
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
    return page(
        request,
        f"editor/{name}",
        status_code=status_code,
        editor=editor,
        csrf=session.csrf if session else "",
        csrf_field=CSRF_FIELD,
        **context,
    )


def local(at: datetime | None, timezone: str) -> str:
    """A UTC time as the editor reads it: in their zone, with the zone's abbreviation."""
    if at is None:
        return ""
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


# -- login / logout -------------------------------------------------------------------------------


def _login_form(request: Request, nxt: str, error: str = "", email: str = "", status: int = 200) -> HTMLResponse:
    jar = cookies(request)
    session = jar.read(request)
    fresh = session is None
    if session is None:
        session = jar.new(None)  # an anonymous session: the login form needs a CSRF token too
    response = page(
        request,
        "editor/login",
        status_code=status,
        title="Editor login",
        editor=None,
        error=error,
        email=email,
        next=_safe_next(nxt),
        csrf_field=CSRF_FIELD,
        csrf=session.csrf,
    )
    if fresh:
        jar.save(response, session)
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
    error = ""
    with session_scope(services.sessions) as db:
        try:
            editor_id: int | None = authenticate(db, email, password, services.clock()).id
        except LoginLocked as exc:
            editor_id, error = None, f"Too many failed logins: this account is locked until {exc.until:%H:%M} UTC."
        except LoginFailed:
            editor_id, error = None, "Wrong email address or password."
    if editor_id is None:
        return _login_form(request, nxt, error, email, status=429 if "locked" in error else 401)
    response = RedirectResponse(_safe_next(nxt), status_code=303)
    jar.save(response, jar.new(editor_id))  # a new session and CSRF token at login
    return response


@router.post("/logout", response_model=None)
def logout(request: Request) -> Response:
    response = RedirectResponse(LOGIN, status_code=303)
    cookies(request).clear(response)
    return response


# -- issues ---------------------------------------------------------------------------------------


@router.get("", response_model=None)
def home() -> Response:
    return RedirectResponse("/editor/issues", status_code=303)


@router.get("/issues")
def issues_list(request: Request, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as db:
        rows = db.scalars(
            select(Issue)
            .where(Issue.kind == IssueKind.CAMPAIGN)
            .order_by(Issue.created_at.desc(), Issue.id.desc())
            .limit(200)
        ).all()
        figures = {r.id: issue_figures(db, r.id) for r in rows if r.planned_at is not None}
        past = history(db)
        items = [
            {
                "id": r.id,
                "subject": r.subject,
                "status": r.status,
                "scheduled": local(r.scheduled_at, editor.timezone),
                "sent": local(r.sent_at, editor.timezone),
                "figures": figures.get(r.id),
            }
            for r in rows
        ]
    chart = bar_chart(
        "Messages sent and unique clickers per issue",
        [f"#{f.issue_id}" for f in past],
        [Series("sent", [f.sent for f in past]), Series("unique clickers", [f.unique_clicks for f in past])],
    )
    return editor_page(request, "issues", editor, title="Issues", issues=items, chart=chart, past=past)


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
    title = f"Edit issue #{issue_id}" if issue_id else "New issue"
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
        return _compose(request, services, editor, values, None, str(exc), status=400)
    return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)


@router.get("/issues/{issue_id}/edit")
def edit_issue(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as db:
        try:
            values = _values(db, get_campaign(db, issue_id))
        except IssueError as exc:
            return editor_page(request, "problem", editor, status_code=404, title="Not found", message=str(exc))
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
        return _compose(request, services, editor, values, issue_id, str(exc), status=400)
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
    with session_scope(services.sessions) as db:
        try:
            issue = get_campaign(db, issue_id)
        except IssueError as exc:
            return editor_page(request, "problem", editor, status_code=404, title="Not found", message=str(exc))
        values = _values(db, issue)
        choices = _choices(db)
        slugs = _audience_slugs(db, issue_id)
        as_specialty = specialty if specialty in slugs else (slugs[0] if slugs else "")
        subscriber_id = None
        if subscriber:
            subscriber_id = db.scalar(
                select(Subscriber.id).where(func.lower(Subscriber.email) == subscriber.strip().lower())
            )
            if subscriber_id is None:
                error = error or f"There is no subscriber {subscriber}."
        preview, preview_error = None, ""
        try:
            preview = preview_issue(
                db,
                services.renderer,
                issue_id,
                now,
                services.plan_options(),
                specialty=None if subscriber_id else as_specialty,
                subscriber_id=subscriber_id,
            )
        except IssueError as exc:
            preview_error = str(exc)
        info = {
            "id": issue.id,
            "subject": issue.subject,
            "status": issue.status,
            "scheduled": local(issue.scheduled_at, editor.timezone),
            "sent": local(issue.sent_at, editor.timezone),
        }
        names = dict(choices["specialties"])
        audience = (
            "All active subscribers"
            if issue.audience_all
            else ", ".join(names.get(s, s) for s in values["specialties"])
        )
    return editor_page(
        request,
        "issue",
        editor,
        status_code=status,
        title=f"Issue #{issue_id}: {info['subject']}",
        issue=info,
        audience=audience,
        preview=preview,
        preview_error=preview_error,
        specialty_choices=[(s, names.get(s, s)) for s in slugs],
        as_specialty=as_specialty,
        as_subscriber=subscriber if subscriber_id else "",
        default_send=now.astimezone(ZoneInfo(editor.timezone)).strftime("%Y-%m-%dT%H:%M"),
        notice=notice,
        error=error,
        names=names,
    )


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
                error=f"Test send failed: {exc}",
                status=400,
            )
    return _issue_page(
        request,
        services,
        editor,
        issue_id,
        specialty=specialty,
        subscriber=subscriber,
        notice=f"A test copy was sent to {msg.to_email}.",
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
            error=f"{send_at!r} is not a date and time (YYYY-MM-DD HH:MM)",
            status=400,
        )
    return _act(
        request,
        services,
        editor,
        issue_id,
        lambda db: schedule_issue(db, issue_id, at, editor.timezone, services.clock()),
    )


@router.post("/issues/{issue_id}/{action}", response_model=None)
def state_action(
    request: Request, issue_id: IssueId, action: str, editor: EditorDep, services: ServicesDep
) -> Response:
    """unschedule / pause / resume / cancel. Resuming queues the open rows again (each sent once)."""
    if action == "resume":
        try:
            resume_campaign(services, issue_id)
        except IssueError as exc:
            return _issue_page(request, services, editor, issue_id, error=str(exc), status=409)
        return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)
    moves = {"unschedule": unschedule_issue, "pause": pause_issue, "cancel": cancel_issue}
    if action not in moves:
        return editor_page(
            request, "problem", editor, status_code=404, title="Not found", message=f"There is no action {action!r}."
        )
    return _act(request, services, editor, issue_id, lambda db: moves[action](db, issue_id))


def _act(
    request: Request, services: Services, editor: Editor, issue_id: int, move: Callable[[Session], object]
) -> Response:
    """Run one state move; back to the issue page, or the page with the reason it was refused (409)."""
    try:
        with session_scope(services.sessions) as db:
            move(db)
    except IssueError as exc:
        return _issue_page(request, services, editor, issue_id, error=str(exc), status=409)
    return RedirectResponse(f"/editor/issues/{issue_id}", status_code=303)


@router.get("/issues/{issue_id}/figures")
def figures_page(request: Request, issue_id: IssueId, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as db:
        try:
            get_campaign(db, issue_id)
        except IssueError as exc:
            return editor_page(request, "problem", editor, status_code=404, title="Not found", message=str(exc))
        figures: Figures = issue_figures(db, issue_id)
    zone = ZoneInfo(editor.timezone)
    labels = [p.start.astimezone(zone).strftime("%d %b %H:%M") for p in figures.timeline]
    chart = bar_chart(
        "Messages sent and clicks per hour",
        labels,
        [Series("sent", [p.sent for p in figures.timeline]), Series("clicks", [p.clicks for p in figures.timeline])],
    )
    return editor_page(
        request, "figures", editor, title=f"Figures for issue #{issue_id}", figures=figures, chart=chart, labels=labels
    )


# -- subscribers ----------------------------------------------------------------------------------


@router.get("/subscribers")
def subscribers_page(
    request: Request,
    editor: EditorDep,
    services: ServicesDep,
    q: str = "",
    page_no: Annotated[int, Query(alias="page")] = 1,
) -> HTMLResponse:
    page_no = max(1, page_no)
    with session_scope(services.sessions) as db:
        counts = dict(
            db.execute(
                select(Subscriber.status, func.count()).group_by(Subscriber.status).order_by(Subscriber.status)
            ).all()
        )
        stmt = select(Subscriber).order_by(Subscriber.email)
        if q.strip():
            like = f"%{q.strip().lower()}%"
            stmt = stmt.where(or_(func.lower(Subscriber.email).like(like), func.lower(Subscriber.name).like(like)))
        rows = db.scalars(stmt.offset((page_no - 1) * SUBSCRIBERS_PER_PAGE).limit(SUBSCRIBERS_PER_PAGE + 1)).all()
        people = [
            {
                "email": r.email,
                "name": r.name,
                "status": r.status,
                "cadence": r.cadence,
                "timezone": r.timezone,
                "specialties": ", ".join(s.name for s in r.specialties),
            }
            for r in rows[:SUBSCRIBERS_PER_PAGE]
        ]
    return editor_page(
        request,
        "subscribers",
        editor,
        title="Subscribers",
        counts=counts,
        people=people,
        q=q,
        page_no=page_no,
        more=len(rows) > SUBSCRIBERS_PER_PAGE,
    )
