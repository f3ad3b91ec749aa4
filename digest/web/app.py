"""The FastAPI application factory: ``create_app(services)``; ``digest serve`` runs it with uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import LOCALES
from digest.web import (
    accounts,
    api,
    api_routes,
    archive,
    corrections,
    editor,
    error_pages,
    integrations,
    ops,
    public,
    rights,
    summaries,
    webhooks,
    webversion,
)
from digest.web.deps import templates_for
from digest.web.limits import BodyLimit, route_limits
from digest.web.sessions import SessionCookies
from digest.wiring import Services, make_login_throttle

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # Pages carry personal tokens in their URLs: never leak them in Referer, never cache them.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # JSON and other answers; HTML pages set their own policy with a nonce (``deps.page``).
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
}
HSTS = "max-age=31536000; includeSubDomains"  # sent only when DIGEST_BASE_URL is https


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool (40 threads by default). More threads than database
        # connections only queue inside the pool, or connect afresh for overflow, and every thread
        # competes for the GIL: run as many requests at once as the process has connections
        # (DIGEST_DB_POOL_SIZE, 4), and let the rest wait their turn in order.
        to_thread.current_default_thread_limiter().total_tokens = services.settings.db_pool_size
        yield

    app = FastAPI(
        docs_url="/docs" if services.settings.api_docs else None,
        redoc_url="/redoc" if services.settings.api_docs else None,
        lifespan=lifespan,
        title="digest",
        summary=(
            "Subscriber pages, public archive, JSON API, provider webhooks and operations routes "
            "of the clinical evidence digest"
        ),
        version="0.1.0",
    )
    app.state.services = services
    app.state.login_throttle = make_login_throttle(services.settings, services.clock)
    app.state.login_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="login")
    app.state.session_cookies = SessionCookies(
        services.settings.secret_key,
        services.settings.old_secret_keys,
        secure=services.settings.https,
    )
    app.include_router(public.router)
    app.include_router(rights.router)
    app.include_router(archive.router)
    app.include_router(webversion.router)
    app.include_router(summaries.router)
    app.include_router(editor.login_router)
    app.include_router(editor.router)
    app.include_router(corrections.router)
    app.include_router(accounts.public_router)
    app.include_router(accounts.router)
    app.include_router(integrations.router)
    app.include_router(api.router)
    app.include_router(api_routes.router)
    app.include_router(webhooks.router)
    app.include_router(ops.router)
    app.add_exception_handler(editor.LoginRequired, editor.login_redirect)  # type: ignore[arg-type]
    error_pages.install(app)  # HTML error pages in the visitor's language, JSON for /api/ and machines

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api.add_schemas(
                get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    app.add_middleware(SecurityHeaders, https=services.settings.https)
    app.add_middleware(
        BodyLimit, limits=route_limits(services.settings.api_max_body_bytes), page=error_pages.body_error
    )
    app.add_middleware(ServerErrorLog)
    return app


class ServerErrorLog:
    """Logs every 5xx answer at ERROR with its method and route template (``/unsubscribe/{token}``):
    there is no access log, since paths carry personal tokens, yet operators (and ``make smoke``)
    must see a server error that a route answered without raising."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_and_log(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                route = scope.get("route")
                log.error(
                    "%s %s answered %d",
                    scope["method"],
                    getattr(route, "path", "(no route)"),
                    message["status"],
                )
            await send(message)

        await self.app(scope, receive, send_and_log)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response that does not set them itself.

    A plain ASGI middleware rather than ``@app.middleware("http")``: that one runs each request
    through an extra task and memory stream, which cost a measurable share of an unsubscribe POST.
    """

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if https else {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app_from_environment() -> FastAPI:
    """The app as each ``digest serve`` worker process runs it (uvicorn's factory): settings from the
    environment, its own services and database pool, tasks queued to the configured broker."""
    from digest.config import get_settings
    from digest.wiring import build_services

    services = build_services(get_settings())
    _warm_up(services)
    return create_app(services)


def _warm_up(services: Services) -> None:
    """Open the pool's connections and compile the page templates before the first request: after
    a deploy or a restart, the first burst (a newsletter's one-click unsubscribes arrive in bursts)
    would otherwise wait for both."""
    connections = [services.engine.connect() for _ in range(services.settings.db_pool_size)]
    for connection in connections:
        connection.close()
    for locale in LOCALES:
        env = templates_for(locale).env
        for name in env.list_templates(filter_func=lambda name: name.startswith("web/")):
            env.get_template(name)
