"""The FastAPI application factory: ``create_app(services)``; ``digest serve`` runs it with uvicorn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi

from digest.web import api, archive, editor, ops, public, webhooks
from digest.web.sessions import SessionCookies
from digest.wiring import Services

SECURITY_HEADERS = {
    # Pages carry personal tokens in their URLs: never leak them in Referer, never cache them.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="digest",
        summary="Subscriber pages, public archive, JSON API, provider webhooks and operations routes of the clinical evidence digest",
        version="0.1.0",
    )
    app.state.services = services
    app.state.session_cookies = SessionCookies(
        services.settings.secret_key, services.settings.old_secret_keys, secure=services.settings.base_url.startswith("https://")
    )
    app.include_router(public.router)
    app.include_router(archive.router)
    app.include_router(editor.login_router)
    app.include_router(editor.router)
    app.include_router(api.router)
    app.include_router(webhooks.router)
    app.include_router(ops.router)
    app.add_exception_handler(editor.LoginRequired, editor.login_redirect)  # type: ignore[arg-type]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api.add_schemas(get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
