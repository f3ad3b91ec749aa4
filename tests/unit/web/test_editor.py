"""The editor dashboard through HTTP: every route needs a session, every POST a CSRF token, logins
are throttled, and issues are composed, previewed, scheduled, paused and resumed through the forms."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, routing
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.models import Summary
from digest.issues.service import start_due_campaigns
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import ConsentEvent
from digest.web.app import create_app
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record
from tests.unit.web.conftest import EditorAccount, csrf_of, log_in

PATH_VALUES = {
    "action": "pause",
    "period_key": "daily:2026-11-27",
    "subscriber_id": "1",
    "editor_id": "1",
    "correction_id": "1",
    "key_id": "1",
    "endpoint_id": "1",
    "delivery_id": "1",
}  # and the issue id of the test's draft


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
    public = {"/editor/login", "/editor/password-reset", "/editor/password/{purpose}/{token}"}
    routes = [(p, m) for p, m in app_routes(create_app(services)) if p.startswith("/editor") and p not in public]
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


def test_login_attempts_are_throttled_per_client_not_locked(
    anonymous: TestClient, editor_account: EditorAccount, services: Services, clock: Clock
) -> None:
    # The default limits: 10 attempts per client and per address in 300 s.
    for _ in range(10):
        response = log_in(anonymous, editor_account.email, "wrong password!")
        assert response.status_code == 401 and "Wrong email address or password" in response.text
    throttled = log_in(anonymous, editor_account.email, editor_account.password)
    assert throttled.status_code == 429 and "Too many login attempts" in throttled.text
    assert throttled.headers["Retry-After"] == "30"  # one attempt back every 300/10 s
    # An address without an account gets the same answer: nothing tells which addresses exist.
    unknown = log_in(anonymous, "nobody@example.org", "wrong password!")
    assert unknown.status_code == 429 and unknown.headers["Retry-After"] == "30"
    assert anonymous.get("/editor/issues").status_code == 303
    # No lockout: once the bucket has a token again, the right password works.
    clock.advance(seconds=30)
    assert log_in(anonymous, editor_account.email, editor_account.password).status_code == 303
    assert anonymous.get("/editor/issues").status_code == 200


def test_logout_ends_the_session_and_every_saved_copy_of_its_cookie(
    editor_client: TestClient, services: Services
) -> None:
    saved = dict(editor_client.cookies)
    token = csrf_of(editor_client.get("/editor/issues").text)
    assert editor_client.post("/editor/logout", data={"csrf_token": token}).status_code == 303
    assert editor_client.get("/editor/issues").status_code == 303
    from digest.web.app import create_app

    with TestClient(create_app(services), base_url="https://testserver", follow_redirects=False) as replay:
        replay.cookies.update(saved)
        assert replay.get("/editor/issues").status_code == 303  # the saved cookie no longer works


def test_a_password_change_or_disable_ends_open_sessions(
    editor_client: TestClient, editor_account: EditorAccount, services: Services
) -> None:
    from digest.editors.service import set_disabled, set_password

    assert editor_client.get("/editor/issues").status_code == 200
    with session_scope(services.sessions) as s:
        set_password(s, editor_account.email, "another long password")
    assert editor_client.get("/editor/issues").status_code == 303
    assert log_in(editor_client, editor_account.email, "another long password").status_code == 303
    assert editor_client.get("/editor/issues").status_code == 200
    with session_scope(services.sessions) as s:
        set_disabled(s, editor_account.email, True)
    assert editor_client.get("/editor/issues").status_code == 303
    disabled = log_in(editor_client, editor_account.email, "another long password")
    assert disabled.status_code == 403 and "This account is disabled" in disabled.text


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
    frame = page.text.split('id="preview-phone"')[1].split("</iframe>")[0]
    source = html.unescape(re.search(r'src="([^"]+)"', frame).group(1))  # type: ignore[union-attr]
    assert source == f"/editor/issues/{issue_id}/preview?specialty=cardiology&subscriber="
    phone = editor_client.get(source)
    assert phone.status_code == 200 and "The pinned trial" in phone.text and "New in cardiology" in phone.text
    assert "<strong>colleagues</strong>" in phone.text and "alert(1)" not in phone.text  # the intro, sanitised
    # The email's own policy (inline styles allowed, no script), framed by the dashboard only.
    assert "style-src 'unsafe-inline'" in phone.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in phone.headers["content-security-policy"]
    assert "script-src" not in phone.headers["content-security-policy"]
    as_person = editor_client.get(issue_url, params={"subscriber": "onco@example.org"})
    person_frame = as_person.text.split('id="preview-desktop"')[1].split("</iframe>")[0]
    person_source = html.unescape(re.search(r'src="([^"]+)"', person_frame).group(1))  # type: ignore[union-attr]
    person = editor_client.get(person_source).text
    assert "The pinned trial" in person and "New in cardiology" not in person

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
    assert 'data-figure="recipients">2<' in figures.text and 'data-figure="sent">2<' in figures.text


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
    assert re.search(r'<td[^>]*class="num"[^>]*>3</td>', page.text)  # three active


def test_dashboard_shows_the_chart_over_time(editor_client: TestClient) -> None:
    page = editor_client.get("/editor/issues")
    assert page.status_code == 200 and "Campaigns: over time" in page.text and "Automatic digests" in page.text


def test_digest_runs_show_beside_campaigns_with_clicks_per_link(
    editor_client: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    """After the automatic digests went out the dashboard lists their run (not "nothing sent"), and
    the run's page shows its figures and the clicks of each link."""
    from digest import dispatch
    from digest.issues.links import follow

    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="c-1",
                title="Cardiology trial one",
                specialties=["cardiology"],
                published_at="2026-11-26T09:00:00Z",
                source_url="https://journal.example/c-1",
            ),
        )
        add_subscriber(s, "cara@example.org", ["cardiology"], created_at=datetime(2026, 11, 20, tzinfo=UTC))
    dispatch.send_due(services, clock())
    html = smtp_sink.received[0].message.get_body(preferencelist=("html",)).get_content()
    token = re.search(r"https://digest\.example\.org/r/([^\"'<>\s]+)", html)
    assert token
    with session_scope(services.sessions) as s:
        follow(s, services.links, token.group(1), clock())

    page = editor_client.get("/editor/issues").text
    assert "No issue has been sent yet" not in page
    run = re.search(r'<tr data-run="daily:2026-11-27">(.*?)</tr>', page, re.S)
    assert run, page
    cells = re.findall(r'<td[^>]*class="num"[^>]*>(\d+)</td>', run.group(1))
    assert cells == ["1", "1", "0", "0", "0", "1", "1"]  # due, sent, failed, bounced, unsubscribes, clicks, unique
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", page)
    assert headers.count("Sent") == 0 and "Sent on" in headers and "Messages sent" in headers

    detail = editor_client.get("/editor/runs/daily:2026-11-27")
    assert detail.status_code == 200
    assert 'data-figure="sent">1<' in detail.text and 'data-figure="clicks">1<' in detail.text
    per_link = re.search(r'<table id="per-link">(.*?)</table>', detail.text, re.S)
    assert (
        per_link and "https://journal.example/c-1" in per_link.group(1) and "Cardiology trial one" in per_link.group(1)
    )
    assert editor_client.get("/editor/runs/daily:1999-01-01").status_code == 404
    # The page's title says the period in words, in the editor's language, not the run's key.
    spanish = editor_client.get("/editor/runs/daily:2026-11-27", headers={"Accept-Language": "es"}).text
    title = re.search(r"<title>(.*?)</title>", spanish, re.S)
    assert title and "Boletín diario del" in title.group(1) and "daily:" not in title.group(1), title


def test_pausing_the_automatic_digests_asks_first_and_the_dispatcher_honours_it(
    editor_client: TestClient, services: Services, readers: dict[str, int], smtp_sink: SMTPSink, clock: Clock
) -> None:
    from digest import dispatch

    ask = editor_client.get("/editor/digests/pause")
    assert ask.status_code == 200
    assert "3 active subscriber(s)" in ask.text  # the audience size, before anything changes
    page = editor_client.get("/editor/issues").text
    assert "Running" in page
    done = editor_client.post("/editor/digests/pause", data={"csrf_token": csrf_of(ask.text)})
    assert done.status_code == 303
    assert "Paused" in editor_client.get("/editor/issues").text
    clock.advance(days=1)
    assert dispatch.send_due(services, clock()).digests_paused and smtp_sink.received == []
    ask = editor_client.get("/editor/digests/resume")
    editor_client.post("/editor/digests/resume", data={"csrf_token": csrf_of(ask.text)})
    assert "Running" in editor_client.get("/editor/issues").text
    assert dispatch.send_due(services, clock()).plan.deliveries == 1  # the cardiology reader: only they have news
    assert [m["To"] for m in smtp_sink.messages] == ["cardio@example.org"]


def test_subscriber_filters_export_import_and_actions(
    editor_client: TestClient, services: Services, readers: dict[str, int]
) -> None:
    """Filter by specialty and status, export what matches as CSV (the import's columns), import a
    CSV upload (all or nothing, or skipping invalid rows), unsubscribe and suppress someone."""
    import csv
    import io

    from digest.subscribers.models import Subscriber
    from digest.subscribers.suppression import is_suppressed

    page = editor_client.get("/editor/subscribers", params={"specialty": "oncology", "status": "active"})
    assert "onco@example.org" in page.text and "cardio@example.org" not in page.text
    assert "1 subscriber match" in page.text
    export = editor_client.get("/editor/subscribers.csv", params={"specialty": "oncology"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["email"], r["specialties"], r["status"]) for r in rows] == [("onco@example.org", "oncology", "active")]

    token = csrf_of(page.text)
    bad = "email,specialties\nnew1@example.org,cardiology\nnot-an-address,cardiology\n"
    refused = editor_client.post(
        "/editor/subscribers/import", data={"csrf_token": token}, files={"file": ("people.csv", bad, "text/csv")}
    )
    assert (
        refused.status_code == 400 and "Nothing was imported" in refused.text and "people.csv: record 3" in refused.text
    )
    with session_scope(services.sessions) as s:
        assert s.scalar(select(Subscriber.id).where(Subscriber.email == "new1@example.org")) is None
    done = editor_client.post(
        "/editor/subscribers/import",
        data={"csrf_token": token, "skip_invalid": "1"},
        files={"file": ("people.csv", bad, "text/csv")},
    )
    assert done.status_code == 200 and "Imported people.csv: 1 new, 0 updated. 1 invalid row(s) skipped" in done.text
    # The export re-imports as it is.
    again = editor_client.post(
        "/editor/subscribers/import",
        data={"csrf_token": token},
        files={"file": ("export.csv", export.text, "text/csv")},
    )
    assert again.status_code == 200 and "0 new, 1 updated" in again.text, re.findall(r"<li>[^<]*</li>", again.text)

    onco = readers["onco@example.org"]
    ask = editor_client.get(f"/editor/subscribers/{onco}/confirm/unsubscribe")
    assert "Unsubscribe onco@example.org?" in ask.text
    assert editor_client.post(f"/editor/subscribers/{onco}/unsubscribe", data={"csrf_token": token}).status_code == 200
    derm = readers["derm@example.org"]
    assert editor_client.post(f"/editor/subscribers/{derm}/suppress", data={"csrf_token": token}).status_code == 200
    with session_scope(services.sessions) as s:
        assert s.get(Subscriber, onco).status == "unsubscribed"  # type: ignore[union-attr]
        assert is_suppressed(s, "derm@example.org")


def test_an_editors_unsubscribe_is_recorded_as_the_operators_with_the_editor(
    editor_client: TestClient, services: Services, editor_account: EditorAccount
) -> None:
    with session_scope(services.sessions) as s:
        reader = add_subscriber(s, "asked-by-phone@example.org", ["cardiology"]).id
    token = csrf_of(editor_client.get(f"/editor/subscribers/{reader}/confirm/unsubscribe").text)
    answer = editor_client.post(f"/editor/subscribers/{reader}/unsubscribe", data={"csrf_token": token})
    assert answer.status_code == 200
    with session_scope(services.sessions) as s:
        events = s.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == reader).order_by(ConsentEvent.id))
        got = [(e.action, e.method, e.ip, json.loads(e.detail or "{}")) for e in events]
    assert got[-1] == ("unsubscribed", "operator", None, {"source": f"editor {editor_account.email}"})
    assert [g[:2] for g in got] == [("added", "operator"), ("unsubscribed", "operator")]


def test_pause_and_cancel_of_a_sending_issue_say_how_many_are_affected(
    editor_client: TestClient, services: Services, readers: dict[str, int], clock: Clock
) -> None:
    from digest.issues.service import start_sending

    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock(), subject="Picks", pinned=["pin-1"])
        start_sending(s, issue_id, clock(), services.plan_options())  # planned, nothing sent yet
    pause = editor_client.get(f"/editor/issues/{issue_id}/confirm/pause")
    assert "0 message(s) went out already; the 3 still to send wait until you resume" in pause.text
    cancel = editor_client.get(f"/editor/issues/{issue_id}/confirm/cancel")
    assert "The 3 message(s) not yet sent will never go out" in cancel.text
    assert _issue(services, issue_id).status == IssueStatus.SENDING  # asking changes nothing
    done = editor_client.post(f"/editor/issues/{issue_id}/pause", data={"csrf_token": csrf_of(pause.text)})
    assert done.status_code == 303 and _issue(services, issue_id).status == IssueStatus.PAUSED


def _tracked_links(html: str) -> list[str]:
    """The /r/ links of a message's HTML part, in order, each once."""
    found = re.findall(r'href="(https://digest\.example\.org/r/[^"]+)"', html)
    return list(dict.fromkeys(found))


def test_campaign_figures_count_clicks_per_link_and_per_summary(
    editor_client: TestClient, services: Services, readers: dict[str, int], smtp_sink: SMTPSink, clock: Clock
) -> None:
    """Readers follow the tracked (/r/) links of the campaign they got; its figures page shows each
    link and each summary with the clicks and unique clickers those follows make."""
    from digest.dispatch import send_issue
    from digest.issues.models import Click

    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock(), subject="Picks", pinned=["pin-1"], specialties=["cardiology", "oncology"])
    send_issue(services, issue_id)
    got = {m["To"]: m.get_body(preferencelist=("html",)).get_content() for m in smtp_sink.messages}  # type: ignore[union-attr]
    assert set(got) == {"cardio@example.org", "onco@example.org"}
    with session_scope(services.sessions) as s:
        url_of = dict(s.execute(select(Summary.id, Summary.source_url)).all())

    def links_of(email: str) -> dict[str, str]:
        """Destination -> the tracked link to it in ``email``'s message (checked through /r/)."""
        out = {}
        for link in _tracked_links(got[email]):
            token = link.rsplit("/r/", 1)[1].replace("&amp;", "&")
            out[services.links.read(token)[1]] = "/r/" + token
        return out

    cardio, onco = links_of("cardio@example.org"), links_of("onco@example.org")
    assert {url_of["pin-1"], url_of["cardio-new"]} <= set(cardio) and url_of["pin-1"] in onco
    # cardio follows the pinned trial three times and the cardiology one once; onco the pinned one once.
    follows = [(cardio, "pin-1")] * 3 + [(cardio, "cardio-new"), (onco, "pin-1")]
    for links, summary_id in follows:
        clock.advance(minutes=5)
        response = editor_client.get(links[url_of[summary_id]])
        assert response.status_code == 302 and response.headers["location"] == url_of[summary_id]
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count(Click.id))) == 5

    page = editor_client.get(f"/editor/issues/{issue_id}/figures").text
    assert 'data-figure="clicks">5<' in page and 'data-figure="unique_clicks">2<' in page
    per_summary = {
        summary_id: (title, [int(n) for n in re.findall(r'<td[^>]*class="num"[^>]*>(\d+)</td>', cells)])
        for summary_id, title, cells in re.findall(
            r'<tr data-summary="([^"]+)"><td[^>]*>([^<]+)</td>(.*?)</tr>', _table(page, "per-summary"), re.S
        )
    }
    # carried by, clicks, unique clickers
    assert per_summary == {
        "pin-1": ("The pinned trial", [2, 4, 2]),
        "cardio-new": ("New in cardiology", [1, 1, 1]),
    }
    rows = re.findall(r"<tr>(.*?)</tr>", _table(page, "per-link").split("<tbody>", 1)[1], re.S)
    per_link = {
        re.search(r'<span class="hint url">([^<]+)</span>', row).group(1): (  # type: ignore[union-attr]
            re.search(r'rel="noreferrer">([^<]+)</a>', row).group(1),  # type: ignore[union-attr]
            [int(n) for n in re.findall(r'<td[^>]*class="num"[^>]*>(\d+)</td>', row)],
        )
        for row in rows
    }
    assert per_link == {
        url_of["pin-1"]: ("The pinned trial", [4, 2]),
        url_of["cardio-new"]: ("New in cardiology", [1, 1]),
    }
    assert list(per_link) == [url_of["pin-1"], url_of["cardio-new"]]  # most clicked first


def _table(page: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert found, table_id
    return found.group(1)
