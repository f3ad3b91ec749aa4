"""Request body limits before any body is read, and webhook credentials before the body: the app is
called as an ASGI server calls it, with a ``receive`` that counts (or forbids) reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from digest.web.app import create_app
from digest.web.limits import DEFAULT_LIMIT, MIB
from digest.wiring import Services


class Client:
    """One request at the ASGI app: the body in chunks of 64 KiB, counting what the app pulled."""

    def __init__(self, services: Services):
        self.app = create_app(services)

    def post(
        self, path: str, chunks: int, *, length: int | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, int]:
        pulled = 0

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            pulled += 1
            return {"type": "http.request", "body": b"x" * 65536, "more_body": pulled < chunks}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if length is not None:
            raw_headers.append((b"content-length", str(length).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), *raw_headers],
            "client": ("10.0.0.9", 5000),
            "server": ("testserver", 443),
            "state": {},
        }
        asyncio.run(self.app(scope, receive, send))
        start = next(m for m in sent if m["type"] == "http.response.start")
        return start["status"], pulled


@pytest.fixture
def client(services: Services) -> Client:
    return Client(services)


def test_a_declared_400_mb_webhook_body_is_refused_unread(client: Client) -> None:
    assert client.post("/webhooks/postmark", 6400, length=400 * MIB) == (413, 0)
    assert client.post("/api/summaries", 6400, length=400 * MIB) == (413, 0)


def test_an_undeclared_body_stops_being_read_at_the_limit(client: Client) -> None:
    """Chunked (no Content-Length): the form parser reads until the route's limit is passed, then 413."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/editor/login", 6400, headers=form) == (413, 1 * MIB // 65536 + 1)
    assert client.post("/subscribe", 6400, headers=form) == (413, DEFAULT_LIMIT // 65536 + 1)


def test_webhook_credentials_are_checked_before_the_body_is_read(client: Client) -> None:
    assert client.post("/webhooks/postmark", 6400) == (401, 0)
    assert client.post("/webhooks/sendgrid", 6400) == (401, 0)  # no fresh signed timestamp


def test_a_bad_content_length_is_400(client: Client) -> None:
    assert client.post("/subscribe", 1, headers={"content-length": "lots"})[0] == 400
