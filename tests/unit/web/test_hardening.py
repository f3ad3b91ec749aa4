"""Issue 17's smaller findings on the web side: Content-Security-Policy and HSTS, API docs pages off
by default, the Secure cookie whatever the scheme's case, a huge page number."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from digest.web.app import create_app
from digest.wiring import Services
from tests.unit.web.conftest import EditorAccount, log_in


def test_pages_carry_a_nonce_policy_that_their_inline_script_and_style_match(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and "script-src 'nonce-" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy
    tags = re.findall(r"<(script|style)([^>]*)>", response.text)
    assert tags and all(f'nonce="{nonce.group(1)}"' in attrs for _, attrs in tags)
    with TestClient(create_app(services)) as client:
        again = client.get("/").headers["Content-Security-Policy"]
    assert again != policy  # a fresh nonce per response


def test_json_answers_get_a_deny_all_policy(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        response = client.get("/healthz")
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_hsts_only_over_https_and_the_scheme_is_read_in_any_case(services: Services) -> None:
    services.settings.base_url = "http://127.0.0.1:8000"
    with TestClient(create_app(services)) as client:
        assert "Strict-Transport-Security" not in client.get("/healthz").headers
    services.settings.base_url = "HTTPS://digest.example.org"
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").headers["Strict-Transport-Security"].startswith("max-age=31536000")
        cookie = client.get("/editor/login").headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_interactive_api_docs_are_off_unless_asked_for(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").status_code == 200
    services.settings.api_docs = True
    with TestClient(create_app(services)) as client:
        assert client.get("/docs").status_code == 200


def test_a_huge_page_number_is_an_empty_page(anonymous: TestClient, editor_account: EditorAccount) -> None:
    assert log_in(anonymous, editor_account.email, editor_account.password).status_code == 303
    response = anonymous.get(f"/editor/subscribers?page={2**63}")
    assert response.status_code == 200
    assert anonymous.get("/editor/subscribers?page=-5").status_code == 200
