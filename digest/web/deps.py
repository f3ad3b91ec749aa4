"""What the routers share: the services, the page templates, the client address, error pages."""

from __future__ import annotations

import secrets
from functools import lru_cache, partial
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment

from digest.config import DEFAULT_LOCALE, LOCALES
from digest.errors import in_locale
from digest.i18n import install, negotiate, supported, translations
from digest.ingest.specialties import specialty_name
from digest.rendering.notices import localized_subject
from digest.resources import template_loader
from digest.wiring import Services


@lru_cache(maxsize=len(LOCALES))
def templates_for(locale: str) -> Jinja2Templates:
    """The page templates in one locale (an environment per locale: digest/i18n.py), with the
    ``specialty`` filter (a shipped specialty's name in the locale, any other as stored) and the
    ``subject`` filter (``subject|subject(kind)``: a notice's stored English subject in the locale,
    any other as written)."""
    env = install(Environment(loader=template_loader(), autoescape=True), locale)
    env.filters["specialty"] = partial(specialty_name, locale=locale)
    env.filters["subject"] = lambda stored, kind: localized_subject(stored, kind, locale)
    return Jinja2Templates(env=env)


templates = templates_for(DEFAULT_LOCALE)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
# A row id in a path: the database's INTEGER range, so that an id no row can have is refused with
# a 422 before it reaches a driver (SQLite's cannot even bind one beyond 64 bits).
IssueId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def client_address(request: Request) -> str:
    """The client's IP (uvicorn resolves X-Forwarded-For from trusted proxies before this)."""
    return request.client.host if request.client else "unknown"


def request_locale(request: Request) -> str:
    """The language of a page for a visitor we do not know: ``?lang=`` if it names one of
    ``LOCALES``, else the browser's Accept-Language, else the default."""
    return supported(request.query_params.get("lang")) or negotiate(request.headers.get("accept-language"))


def explain(request: Request, exc: BaseException) -> str:
    """Why ``exc`` was raised, in the page's language (``digest.errors.Explained``; else ``str(exc)``)."""
    return in_locale(exc, request_locale(request))


def page_gettext(request: Request, locale: str | None = None) -> Any:
    """``gettext`` for the page about to be shown (``locale``, else the visitor's: ``request_locale``)."""
    return translations(locale or request_locale(request)).gettext


def page(
    request: Request, name: str, status_code: int = 200, *, locale: str | None = None, **context: Any
) -> HTMLResponse:
    """Render ``templates/web/<name>.html`` with the list name and base URL available, in ``locale``
    (a subscriber's own), else the visitor's (``request_locale``): the editor's pages too."""
    services = get_services(request)
    if locale is None:
        locale = request_locale(request)
    context.setdefault("list_name", services.settings.list_name)
    context.setdefault("postal_address", services.settings.postal_address)
    nonce = secrets.token_urlsafe(16)
    response = templates_for(locale).TemplateResponse(
        request, f"web/{name}.html", {**context, "csp_nonce": nonce}, status_code=status_code
    )
    response.headers["Content-Security-Policy"] = page_policy(nonce)
    response.headers["Content-Language"] = locale
    return response


def page_policy(nonce: str) -> str:
    """The Content-Security-Policy of an HTML page: its own inline style and script (by nonce) and
    same-origin resources, nothing else; no framing, no plugins, forms post to this origin only."""
    return (
        f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


def invalid_link(request: Request, status_code: int = 400) -> HTMLResponse:
    """The one page for every forged, garbled, expired or dangling link: it says nothing more."""
    gettext = page_gettext(request)
    title = gettext("This link is not valid")
    return page(request, "invalid_link", status_code=status_code, title=title)
