"""Error answers of the pages: an HTML page in the visitor's language (``?lang=``, Accept-Language),
with the right status, for 400, 403 (a form's CSRF check), 404, 405, 413, 422 and 500 on every
route that serves people; the machine routes (``JSON_PREFIXES``: the JSON API, provider webhooks,
health and metrics, the OpenAPI documents) keep FastAPI's JSON answers (the API its problem details).

``BodyLimit`` (digest/web/limits.py) answers an over-long body before the app runs; it calls
``body_error`` for a page's path so that the 413 is the same page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from digest.i18n import N_
from digest.web.deps import page, page_gettext
from digest.web.sessions import CsrfFailed

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/webhooks/", "/healthz", "/metrics", "/openapi.json", "/docs", "/redoc")


# Status -> (title, what to do), in English: translated where shown.
MESSAGES = {
    400: (N_("This request could not be read"), N_("Please go back, reload the page and try again.")),
    403: (N_("You cannot do this"), N_("This page is not open to you. If you think it should be, sign in again.")),
    404: (
        N_("Page not found"),
        N_("There is no page at this address. Check the link, or start again from the home page."),
    ),
    405: (
        N_("This page cannot be used this way"),
        N_("This address does not take this kind of request. Please go back and use the page's own links and buttons."),
    ),
    413: (
        N_("What you sent is too large"),
        N_("The form or file you sent is over the size this page accepts. Please send less at a time."),
    ),
    422: (
        N_("Something in the request is missing or wrong"),
        N_("A value this page needs is missing or not in a form it accepts. Please go back, check and try again."),
    ),
    500: (
        N_("Something went wrong on our side"),
        N_("The page could not be shown because of an error of ours. Please try again in a few minutes."),
    ),
}
CSRF_MESSAGE = (
    N_("This form has expired"),
    N_("For your security, a form must be sent from this site during your session. Reload the page and try again."),
)


def wants_html(path: str) -> bool:
    """Whether ``path`` serves people (an HTML error page) rather than machines (JSON)."""
    return not (path.startswith(JSON_PREFIXES) or path == "/api")


def error_page(
    request: Request, status: int, *, csrf: bool = False, headers: Mapping[str, str] | None = None
) -> Response:
    """The error page for ``status`` in the visitor's language."""
    title, message = CSRF_MESSAGE if csrf else MESSAGES.get(status, MESSAGES[500 if status >= 500 else 400])
    gettext = page_gettext(request)
    response = page(request, "error", status_code=status, title=gettext(title), message=gettext(message))
    response.headers.update(headers or {})
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not wants_html(request.url.path):
        return await http_exception_handler(request, exc)
    return error_page(request, exc.status_code, csrf=isinstance(exc, CsrfFailed), headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not wants_html(request.url.path):
        return await request_validation_exception_handler(request, exc)
    return error_page(request, 422)


async def server_error(request: Request, exc: Exception) -> Response:
    """A 500 (the exception is logged and raised on by Starlette's ServerErrorMiddleware)."""
    if wants_html(request.url.path):
        try:
            return error_page(request, 500)
        except Exception:  # the page itself failing must not hide the first error
            log.exception("the error page could not be rendered")
    return PlainTextResponse("Internal Server Error", status_code=500)


async def body_error(scope: Scope, receive: Receive, send: Send, status: int) -> bool:
    """Answer ``BodyLimit``'s 413 or 400 with the page, for a page's path; False for a machine's."""
    if not wants_html(scope["path"]):
        return False
    await error_page(Request(scope, receive), status)(scope, receive, send)
    return True


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(500, server_error)
