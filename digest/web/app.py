"""The FastAPI application factory: ``create_app(services)``; ``digest serve`` runs it with uvicorn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from digest.web import ops, public, webhooks
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
        summary="Subscriber pages, provider webhooks and operations routes of the clinical evidence digest",
        version="0.1.0",
    )
    app.state.services = services
    app.include_router(public.router)
    app.include_router(webhooks.router)
    app.include_router(ops.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app
