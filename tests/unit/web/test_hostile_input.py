"""Hostile input through the public pages: markup echoed back by the sign-up and preference forms
comes out escaped, a line break in the sign-up address cannot become a header, and every editor or
API route refuses anonymous requests (checked over the app's routes, so routes added later are
covered too)."""

from __future__ import annotations

import re

import lxml.html
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.routing import Route

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.web.app import create_app
from digest.wiring import Services
from tests.factories import add_subscriber
from tests.unit.rendering.test_hostile_markup import PAYLOADS, assert_inert, scripts

PROTECTED_PREFIXES = ("/editor", "/api")


def _count(services: Services) -> int:
    with session_scope(services.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(Subscriber)) or 0)


def _own_scripts(clean_page: str) -> frozenset[str]:
    """The inline scripts the template itself carries (a page rendered from harmless input)."""
    return frozenset(scripts(lxml.html.document_fromstring(clean_page)))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_signup_echoes_hostile_values_as_text(
    web: TestClient, services: Services, smtp_sink: SMTPSink, payload: str
) -> None:
    own = _own_scripts(web.get("/").text)
    response = web.post(
        "/subscribe", data={"email": payload, "specialties": [payload], "cadence": payload, "timezone": payload}
    )
    assert response.status_code == 400
    doc = assert_inert(response.text, f"sign-up page echoing {payload!r}", own)
    assert doc.xpath("//input[@name='email']")[0].get("value") == payload  # kept for the reader to fix, as text
    assert smtp_sink.received == [] and _count(services) == 0


@pytest.mark.parametrize("payload", PAYLOADS)
def test_preferences_echo_hostile_values_as_text(web: TestClient, services: Services, payload: str) -> None:
    with session_scope(services.sessions) as s:
        sid = add_subscriber(s, "reader@example.org", ["cardiology"]).id
    url = f"/preferences/{services.tokens.make(Purpose.PREFERENCES, sid)}"
    own = _own_scripts(web.get(url).text)
    response = web.post(url, data={"specialties": [payload], "cadence": payload, "timezone": payload})
    assert response.status_code == 400
    assert_inert(response.text, f"preferences page echoing {payload!r}", own)
    assert_inert(web.get(url).text, "preferences page after a refused save", own)


@pytest.mark.parametrize(
    "email",
    [
        "a@example.org\r\nBcc: victim@example.net",
        "a@example.org\nX-Injected: yes",
        "victim@example.net,\r\n a@example.org",
    ],
)
def test_a_line_break_in_the_signup_address_is_refused(
    web: TestClient, services: Services, smtp_sink: SMTPSink, email: str
) -> None:
    response = web.post(
        "/subscribe", data={"email": email, "specialties": ["cardiology"], "cadence": "daily", "timezone": "UTC"}
    )
    assert response.status_code == 400
    assert smtp_sink.received == [] and _count(services) == 0


def _protected(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PROTECTED_PREFIXES)


def anonymous_access(app: FastAPI, client: TestClient) -> list[str]:
    """Every editor or API route that does not refuse an anonymous request (401, 403, or a redirect to
    a login page). Login pages themselves are public; path parameters are filled with ``1``."""
    problems = []
    for route in app.routes:
        if (
            not isinstance(route, APIRoute | Route)
            or not _protected(route.path)
            or route.path.rstrip("/").endswith("/login")
        ):
            continue
        url = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in sorted((route.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
            response = client.request(method, url, follow_redirects=False)
            redirect_to_login = response.is_redirect and "login" in response.headers.get("location", "")
            if response.status_code not in (401, 403) and not redirect_to_login:
                problems.append(f"{method} {route.path} answered {response.status_code} to an anonymous request")
    return problems


def test_no_editor_page_or_api_route_without_authentication(services: Services) -> None:
    app = create_app(services)
    with TestClient(app) as client:
        assert anonymous_access(app, client) == []


def test_the_route_check_finds_an_unprotected_route(services: Services) -> None:
    """The check above is not vacuous: an API route without authentication is reported, one that
    refuses is not."""
    app = create_app(services)

    @app.get("/api/open/{item_id}")
    def open_route(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.post("/editor/closed")
    def closed_route() -> None:
        raise HTTPException(401, "log in first")

    with TestClient(app) as client:
        assert anonymous_access(app, client) == ["GET /api/open/{item_id} answered 200 to an anonymous request"]
