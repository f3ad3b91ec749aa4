"""Request body limits, applied before the application reads a byte of the body.

``BodyLimit`` is an ASGI middleware in front of every route. Each path prefix has its limit (the
first that matches): provider webhooks and the editor's forms 1 MiB, the JSON API
``DIGEST_API_MAX_BODY_BYTES`` (16 MiB), everything else (sign-up, preferences, one-click
unsubscribe) 64 KiB. A declared ``Content-Length`` over the limit is answered 413 at once, the body
never read; a body without one (chunked) is counted as the application reads it, and the reading
stops with 413 at the limit. The 400 MB POST to a provider's webhook of issue 17 now costs one header
check.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB
DEFAULT_LIMIT = 64 * KIB


def route_limits(api_max_body: int) -> tuple[tuple[str, int], ...]:
    """(path prefix, bytes) by route class; the first prefix that matches wins."""
    return (("/webhooks/", 1 * MIB), ("/editor/", 1 * MIB), ("/api/", api_max_body))


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` at the limit: an HTTPException, so that the app's handlers answer
    413 even where a framework wraps body errors (FastAPI's form parsing turns others into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the limit of {limit} bytes for this route")


# Answers the 413 or 400 itself (an error page for a page's path) and says so, else JSON is sent.
PageAnswer = Callable[[Scope, Receive, Send, int], Awaitable[bool]]


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        limits: Sequence[tuple[str, int]],
        default: int = DEFAULT_LIMIT,
        page: PageAnswer | None = None,
    ) -> None:
        self.app = app
        self.limits = tuple(limits)
        self.default = default
        self.page = page

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            status = 413 if declared > limit else 400
            if self.page is not None and await self.page(scope, receive, send, status):
                return
            await _too_large(send, limit) if declared > limit else await _bad_length(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started and not (self.page is not None and await self.page(scope, receive, send, 413)):
                await _too_large(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, f"request body over the limit of {limit} bytes for this route")


async def _bad_length(send: Send) -> None:
    await _answer(send, 400, "invalid Content-Length")
