"""The editor dashboard through HTTP: every route needs a session, every POST a CSRF token, logins
are throttled, and issues are composed, previewed, scheduled, paused and resumed through the forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.issues.service import start_due_campaigns
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.web.app import create_app
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record
from tests.unit.web.conftest import EditorAccount, csrf_of, log_in

PATH_VALUES = {"action": "pause", "key_id": "1", "endpoint_id": "1", "delivery_id": "1"}  # and the draft's issue id


def app_routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route the app serves, through included routers too (FastAPI >= 0.116
    keeps included routers as nodes; older versions flatten them into ``app.routes``)."""
    contexts = getattr(routing, "iter_route_contexts", None)
    found = contexts(app.routes) if contexts else app.routes
    return [(r.path, set(r.methods or ())) for r in found if r.path is not None and r.methods]


def _issue(services: Services, issue_id: int) -> Issue:
    with session_scope(services.sessions) as s:
        row = s.get(Issue, issue_id)
        assert row is not None
        s.expunge(row)
        return row


def _issue_count(services: Services) -> int:
    with session_scope(services.sessions) as s:
        return s.scalar(select(func.count(Issue.id))) or 0


def test_every_editor_route_but_login_needs_a_session(anonymous: TestClient, services: Services) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, services.clock(), subject="Secret draft")
    values = {**PATH_VALUES, "issue_id": str(issue_id)}
    routes = [(p, m) for p, m in app_routes(create_app(services)) if p.startswith("/editor") and p != "/editor/login"]
    assert len(routes) >= 12  # the dashboard really is mounted
    for route_path, methods in routes:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route_path)
        for method in methods:
            response = anonymous.request(method, path, data={"subject": "changed", "csrf_token": "x"})
            assert response.status_code in (303, 401), f"{method} {path} answered {response.status_code}"
            if response.status_code == 303:
                assert response.headers["location"].startswith("/editor/login"), f"{method} {path}"
            assert "Secret draft" not in response.text
    row = _issue(services, issue_id)
    assert (row.subject, row.status) == ("Secret draft", IssueStatus.DRAFT)


def test_login_page_redirects_back_only_inside_the_dashboard(
    anonymous: TestClient, editor_account: EditorAccount
) -> None:
    assert anonymous.get("/editor/subscribers").headers["location"] == "/editor/login?next=/editor/subscribers"
    response = log_in(anonymous, editor_account.email, editor_account.password, next_="https://evil.example/")
    assert response.status_code == 303 and response.headers["location"] == "/editor/issues"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie and "max-age=43200" in cookie


def test_csrf_missing_or_wrong_is_403_and_changes_nothing(editor_client: TestClient, services: Services) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, services.clock(), subject="Before")
    form = {"subject": "After", "audience": "all"}
    for token in ({}, {"csrf_token": "forged"}):
        assert editor_client.post(f"/editor/issues/{issue_id}", data={**form, **token}).status_code == 403
        assert editor_client.post("/editor/issues", data={**form, **token}).status_code == 403
        assert editor_client.post(f"/editor/issues/{issue_id}/cancel", data=token).status_code == 403
        assert editor_client.post("/editor/logout", data=token).status_code == 403
    row = _issue(services, issue_id)
    assert (row.subject, row.status) == ("Before", IssueStatus.DRAFT)
    assert _issue_count(services) == 1
    # ... and the page's own token works.
    token = csrf_of(editor_client.get(f"/editor/issues/{issue_id}/edit").text)
    assert editor_client.post(f"/editor/issues/{issue_id}", data={**form, "csrf_token": token}).status_code == 303
    assert _issue(services, issue_id).subject == "After"


def test_a_token_from_another_session_is_refused(
    editor_client: TestClient, anonymous: TestClient, services: Services
) -> None:
    from digest.web.app import create_app as make

    with TestClient(make(services), base_url="https://testserver", follow_redirects=False) as other:
        foreign = csrf_of(other.get("/editor/login").text)
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, services.clock(), subject="Before")
    assert editor_client.post(f"/editor/issues/{issue_id}/cancel", data={"csrf_token": foreign}).status_code == 403
    assert _issue(services, issue_id).status == IssueStatus.DRAFT


def test_login_without_csrf_is_refused(anonymous: TestClient, editor_account: EditorAccount) -> None:
    anonymous.get("/editor/login")
    response = anonymous.post(
        "/editor/login", data={"email": editor_account.email, "password": editor_account.password}
    )
    assert response.status_code == 403
    assert anonymous.get("/editor/issues").status_code == 303


def test_login_throttling_locks_the_account(anonymous: TestClient, editor_account: EditorAccount, clock: Clock) -> None:
    for _ in range(4):
        response = log_in(anonymous, editor_account.email, "wrong password!")
        assert response.status_code == 401 and "Wrong email address or password" in response.text
    response = log_in(anonymous, editor_account.email, "wrong password!")
    assert response.status_code == 429 and "locked until" in response.text
    # Locked: even the right password is refused now ...
    assert log_in(anonymous, editor_account.email, editor_account.password).status_code == 429
    assert anonymous.get("/editor/issues").status_code == 303
    # ... and accepted once the lock has passed.
    clock.advance(minutes=16)
    assert log_in(anonymous, editor_account.email, editor_account.password).status_code == 303
    assert anonymous.get("/editor/issues").status_code == 200


def test_logout_ends_the_session(editor_client: TestClient) -> None:
    token = csrf_of(editor_client.get("/editor/issues").text)
    assert editor_client.post("/editor/logout", data={"csrf_token": token}).status_code == 303
    assert editor_client.get("/editor/issues").status_code == 303


@pytest.fixture
def readers(services: Services) -> dict[str, int]:
    now = services.clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="pin-1", title="The pinned trial", specialties=["oncology"], published_at="2026-11-20T09:00:00Z"
            ),
            summary_record(
                id="cardio-new",
                title="New in cardiology",
                specialties=["cardiology"],
                published_at="2026-11-26T09:00:00Z",
            ),
        )
        people = {
            "cardio@example.org": add_subscriber(s, "cardio@example.org", ["cardiology"], created_at=now).id,
            "onco@example.org": add_subscriber(s, "onco@example.org", ["oncology"], created_at=now).id,
            "derm@example.org": add_subscriber(s, "derm@example.org", ["dermatology"], created_at=now).id,
        }
    return people


def test_compose_preview_schedule_pause_resume_through_the_forms(
    editor_client: TestClient, services: Services, readers: dict[str, int], clock: Clock, smtp_sink: SMTPSink
) -> None:
    new = editor_client.get("/editor/issues/new")
    assert new.status_code == 200 and "The pinned trial" in new.text
    response = editor_client.post(
        "/editor/issues",
        data={
            "csrf_token": csrf_of(new.text),
            "subject": "Editor's picks",
            "preheader": "Three trials",
            "intro": "Hello **colleagues** <script>alert(1)</script>",
            "audience": "specialties",
            "specialties": ["cardiology", "oncology"],
            "pinned": ["pin-1"],
        },
    )
    assert response.status_code == 303
    issue_url = response.headers["location"]
    issue_id = int(issue_url.rsplit("/", 1)[-1])

    page = editor_client.get(issue_url + "?specialty=cardiology")
    assert page.status_code == 200
    assert 'id="preview-desktop"' in page.text and 'id="preview-phone"' in page.text
    assert "The pinned trial" in page.text and "New in cardiology" in page.text
    phone = page.text.split('id="preview-phone"')[1].split("</iframe>")[0]
    assert "&lt;strong&gt;colleagues" in phone and "alert(1)" not in phone  # the intro, sanitised
    as_person = editor_client.get(issue_url, params={"subscriber": "onco@example.org"})
    assert "The pinned trial" in as_person.text and "New in cardiology" not in as_person.text

    # Schedule at 13:05 in the editor's zone (Europe/Berlin, UTC+1 in November).
    token = csrf_of(page.text)
    response = editor_client.post(f"{issue_url}/schedule", data={"csrf_token": token, "send_at": "2026-11-27T13:05"})
    assert response.status_code == 303
    row = _issue(services, issue_id)
    assert row.status == IssueStatus.SCHEDULED and row.scheduled_at == datetime(2026, 11, 27, 12, 5, tzinfo=UTC)
    listing = editor_client.get("/editor/issues").text
    assert "2026-11-27 13:05 CET" in listing and "scheduled" in listing

    # The beat task starts it; plan without sending, then pause and resume through the buttons.
    clock.advance(minutes=6)
    with session_scope(services.sessions) as s:
        start_due_campaigns(s, clock(), services.plan_options())
    assert editor_client.post(f"{issue_url}/pause", data={"csrf_token": token}).status_code == 303
    assert _issue(services, issue_id).status == IssueStatus.PAUSED
    assert editor_client.post(f"{issue_url}/pause", data={"csrf_token": token}).status_code == 409  # not twice
    assert editor_client.post(f"{issue_url}/resume", data={"csrf_token": token}).status_code == 303
    assert editor_client.post(f"{issue_url}/resume", data={"csrf_token": token}).status_code == 409
    assert sorted(m["To"] for m in smtp_sink.messages) == ["cardio@example.org", "onco@example.org"]
    assert _issue(services, issue_id).status == IssueStatus.SENT
    with session_scope(services.sessions) as s:
        assert set(s.scalars(select(Delivery.status).where(Delivery.issue_id == issue_id))) == {DeliveryStatus.SENT}
    figures = editor_client.get(f"{issue_url}/figures")
    assert figures.status_code == 200 and "<svg" in figures.text
    assert re.search(r'<tr id="figures">\s*<td class="num">2</td><td class="num">2</td>', figures.text)


def test_empty_audience_warning_and_test_send(
    editor_client: TestClient, services: Services, readers: dict[str, int], smtp_sink: SMTPSink
) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, services.clock(), subject="Nothing pinned")
    page = editor_client.get(f"/editor/issues/{issue_id}", params={"specialty": "cardiology"})
    assert "would receive an empty digest" in page.text
    warning = page.text.split('class="warning"')[1].split("</div>")[0]
    assert (
        "Dermatology: 1 subscriber" in warning and "Oncology: 1 subscriber" in warning and "Cardiology" not in warning
    )

    response = editor_client.post(
        f"/editor/issues/{issue_id}/test-send",
        data={"csrf_token": csrf_of(page.text), "to": "me@example.net", "specialty": "cardiology"},
    )
    assert response.status_code == 200 and "A test copy was sent to me@example.net" in response.text
    (msg,) = smtp_sink.messages
    assert msg["To"] == "me@example.net" and msg["Subject"] == "[Test] Nothing pinned"
    assert _issue(services, issue_id).status == IssueStatus.DRAFT


def test_subscribers_page_counts_and_searches(editor_client: TestClient, readers: dict[str, int]) -> None:
    page = editor_client.get("/editor/subscribers", params={"q": "onco"})
    assert page.status_code == 200
    assert "onco@example.org" in page.text and "cardio@example.org" not in page.text
    assert '<td class="num">3</td>' in page.text  # three active


def test_dashboard_shows_the_chart_over_time(editor_client: TestClient) -> None:
    page = editor_client.get("/editor/issues")
    assert page.status_code == 200 and "Over time" in page.text
