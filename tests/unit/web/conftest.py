"""Editor fixtures for the web tests: an editor account, and a client logged in as it over https
(the test base URL is https, so the session cookie is Secure)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from digest.db import session_scope
from digest.editors.service import EditorIn, create_editor
from digest.wiring import Services

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class EditorAccount:
    id: int
    email: str
    password: str = PASSWORD


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id still, at the lowest cost: these tests log in many times and test the flow, not the cost."""
    from argon2 import PasswordHasher

    from digest.editors import service

    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def editor_account(services: Services) -> EditorAccount:
    with session_scope(services.sessions) as s:
        editor = create_editor(s, EditorIn("ed@example.org", PASSWORD, "Europe/Berlin"))
        return EditorAccount(editor.id, editor.email)


def log_in(client: TestClient, email: str, password: str, next_: str = "/editor/issues"):
    token = csrf_of(client.get("/editor/login").text)
    return client.post("/editor/login", data={"email": email, "password": password, "next": next_, "csrf_token": token})


@pytest.fixture
def anonymous(services: Services) -> Iterator[TestClient]:
    from digest.web.app import create_app

    with TestClient(create_app(services), base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def editor_client(anonymous: TestClient, editor_account: EditorAccount) -> TestClient:
    response = log_in(anonymous, editor_account.email, editor_account.password)
    assert response.status_code == 303, response.text
    return anonymous
