"""Editor accounts from the dashboard: invite another editor by email, disable or enable an
account, and set a password through a signed link (the invitation's, or a reset link an editor
requests on the login page). See digest/editors/links.py for the links.

The reset request answers the same whether or not the address has an account, so the page tells
nobody which addresses are editors.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.db import session_scope
from digest.editors.links import PasswordLinks, Purpose
from digest.editors.models import Editor
from digest.editors.service import EditorError, get_editor, invite_editor, list_editors, set_disabled, set_password
from digest.i18n import translations
from digest.subscribers.schema import iana_timezones
from digest.subscribers.tokens import BadToken
from digest.web.account_mail import AccountMailFailed, send_account_email
from digest.web.deps import IssueId, ServicesDep, explain, invalid_link, page_gettext, request_locale
from digest.web.editor import EditorDep, cookies, current_editor, editor_page, local, not_found, public_page
from digest.web.sessions import check_csrf
from digest.wiring import Services

FormText = Annotated[str, Form()]

public_router = APIRouter(
    prefix="/editor", tags=["editor"], default_response_class=HTMLResponse, include_in_schema=False
)
router = APIRouter(
    prefix="/editor",
    tags=["editor"],
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(current_editor)],
)


def password_links(services: Services) -> PasswordLinks:
    settings = services.settings
    return PasswordLinks(settings.secret_key, settings.old_secret_keys, settings.base_url)


# -- the accounts page ----------------------------------------------------------------------------


def _accounts_page(
    request: Request, services: Services, editor: Editor, *, notice: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    locale = request_locale(request)
    with session_scope(services.sessions) as db:
        accounts = [
            {
                "id": e.id,
                "email": e.email,
                "timezone": e.timezone,
                "last_login": local(e.last_login_at, editor.timezone, locale),
                "state": "disabled" if e.disabled else ("invited" if e.last_login_at is None else "active"),
                "me": e.id == editor.id,
            }
            for e in list_editors(db)
        ]
    return editor_page(
        request,
        "editors",
        editor,
        status_code=status,
        title=translations(locale).gettext("Editors"),
        accounts=accounts,
        notice=notice,
        error=error,
        zones=iana_timezones(),
    )


@router.get("/editors")
def editors_page(request: Request, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    return _accounts_page(request, services, editor)


@router.post("/editors/invite")
def invite(
    request: Request, editor: EditorDep, services: ServicesDep, email: FormText = "", timezone: FormText = "UTC"
) -> HTMLResponse:
    """Create the account (no usable password) and email the invitee a link to choose one."""
    try:
        with session_scope(services.sessions) as db:
            invited = invite_editor(db, email, timezone or "UTC")
            url = password_links(services).url(Purpose.INVITE, invited)
            address = invited.email
            send_account_email(
                services.composer,
                services.transport,
                Purpose.INVITE,
                address,
                url,
                services.clock(),
                invited_by=editor.email,
                locale=request_locale(request),
            )
    except (EditorError, AccountMailFailed) as exc:
        _ = page_gettext(request)
        error = _("No invitation was sent: %(reason)s.") % {"reason": explain(request, exc)}
        return _accounts_page(request, services, editor, error=error, status=400)
    _ = page_gettext(request)
    notice = _("An invitation went to %(email)s; its link works for 7 days.") % {"email": address}
    return _accounts_page(request, services, editor, notice=notice)


@router.get("/editors/{editor_id}/confirm/{action}")
def confirm_account_action(
    request: Request, editor_id: IssueId, action: str, editor: EditorDep, services: ServicesDep
) -> HTMLResponse:
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        account = db.get(Editor, editor_id)
        email = account.email if account else ""
    if action not in ("disable", "enable") or not email:
        return not_found(request, editor, _("No such editor or action."))
    return editor_page(
        request,
        "confirm",
        editor,
        title=(_("Disable %(email)s?") if action == "disable" else _("Enable %(email)s?")) % {"email": email},
        action=f"/editor/editors/{editor_id}/{action}",
        button=(_("Yes, disable %(email)s") if action == "disable" else _("Yes, enable %(email)s")) % {"email": email},
        danger=action == "disable",
        back="/editor/editors",
        message=(
            _("%(email)s will not be able to log in, and is logged out at once. Their issues stay.")
            if action == "disable"
            else _("%(email)s will be able to log in again with their password.")
        )
        % {"email": email},
        fields={},
        already="",
    )


@router.post("/editors/{editor_id}/{action}", response_model=None)
def account_action(
    request: Request, editor_id: IssueId, action: str, editor: EditorDep, services: ServicesDep
) -> Response:
    _ = page_gettext(request)
    if action not in ("disable", "enable"):
        return not_found(request, editor, _("No such action."))
    if editor_id == editor.id and action == "disable":
        return _accounts_page(request, services, editor, error=_("You cannot disable your own account."), status=409)
    with session_scope(services.sessions) as db:
        account = db.get(Editor, editor_id)
        if account is None:
            return not_found(request, editor, _("No such editor."))
        email = set_disabled(db, account.email, action == "disable").email
    done = _("%(email)s is disabled.") if action == "disable" else _("%(email)s is enabled.")
    return _accounts_page(request, services, editor, notice=done % {"email": email})


# -- before login: reset request, set a password ----------------------------------------------------


@public_router.get("/password-reset")
def reset_form(request: Request) -> HTMLResponse:
    _ = page_gettext(request)
    return public_page(request, "reset", title=_("Reset your password"), sent="", email="")


@public_router.post("/password-reset")
async def request_reset(request: Request, services: ServicesDep) -> HTMLResponse:
    await check_csrf(request, cookies(request).read(request))
    form = await request.form()
    email = str(form.get("email", "")).strip()
    with session_scope(services.sessions) as db:
        try:
            account = get_editor(db, email)
        except EditorError:
            account = None
        if account is not None and not account.disabled:
            url = password_links(services).url(Purpose.RESET, account)
            try:
                send_account_email(
                    services.composer,
                    services.transport,
                    Purpose.RESET,
                    account.email,
                    url,
                    services.clock(),
                    locale=request_locale(request),
                )
            except AccountMailFailed:
                pass  # the answer must not differ: the operator sees the transport's error in its logs
    _ = page_gettext(request)
    return public_page(request, "reset", title=_("Reset your password"), sent=email, email=email)


def _purpose(value: str) -> Purpose | None:
    return Purpose(value) if value in (p.value for p in Purpose) else None


@public_router.get("/password/{purpose}/{token}")
def password_form(request: Request, purpose: str, token: str, services: ServicesDep) -> HTMLResponse:
    kind = _purpose(purpose)
    with session_scope(services.sessions) as db:
        try:
            if kind is None:
                raise BadToken("password link")
            email = password_links(services).editor(db, kind, token).email
        except BadToken:
            return invalid_link(request)
    _ = page_gettext(request)
    return public_page(request, "password", title=_("Choose your password"), email=email, error="")


@public_router.post("/password/{purpose}/{token}", response_model=None)
async def choose_password(request: Request, purpose: str, token: str, services: ServicesDep) -> Response:
    jar = cookies(request)
    await check_csrf(request, jar.read(request))
    form = await request.form()
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    kind = _purpose(purpose)
    error = ""
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        try:
            if kind is None:
                raise BadToken("password link")
            account = password_links(services).editor(db, kind, token)
        except BadToken:
            return invalid_link(request)
        email = account.email
        if password != again:
            error = _("The two passwords differ: type the same password twice.")
        else:
            try:
                editor = set_password(db, email, password)  # ends every earlier session of the account
                editor_id, version = editor.id, editor.session_version
            except EditorError as exc:
                error = f"{explain(request, exc).capitalize()}."
    if error:
        return public_page(request, "password", 400, title=_("Choose your password"), email=email, error=error)
    response = RedirectResponse("/editor/issues", status_code=303)
    jar.save(response, jar.new(editor_id, version))  # logged in, with a fresh session
    return response
