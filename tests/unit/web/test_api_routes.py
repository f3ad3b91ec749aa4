"""The JSON API under /api/: API keys and their scopes on every route, subscribers (double opt-in
or confirmed, read, update, unsubscribe, erase, list with filters and cursor paging over 10,000),
summaries, issues and webhook endpoints, and examples for each in /openapi.json."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.models import SummaryVersion as VersionRow
from digest.integrations.apikeys import SCOPES, create_key, key_hash
from digest.integrations.models import ApiKey
from digest.rights import find_subscriber
from digest.subscribers.models import ConsentEvent, Subscriber
from digest.wiring import Services
from tests.factories import add_summaries, bulk_subscribers, planned_issue, summary_record


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    from digest.web.app import create_app

    with TestClient(create_app(services), follow_redirects=False) as client:
        yield client


def key_with(services: Services, *scopes: str) -> dict[str, str]:
    with session_scope(services.sessions) as s:
        _, key = create_key(s, list(scopes), "test", services.clock())
    return {"Authorization": f"Bearer {key}"}


def _api_routes() -> list[tuple[str, str, str]]:
    """(method, path, scope) of every /api route, the scope read off its dependency."""
    from digest.web import api, api_routes

    found = []
    for router in (api.router, api_routes.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            [scope] = [
                d.call.__name__.removeprefix("require_").replace("_", ":", 1)
                for d in route.dependant.dependencies
                if d.call is not None and d.call.__name__.startswith("require_")
            ]
            for method in route.methods:
                found.append((method, route.path, scope))
    return found


ROUTES = _api_routes()


def _call(api: TestClient, method: str, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    url = path.replace("{subscriber_id}", "1").replace("{summary_id}", "s-1")
    url = url.replace("{issue_id}", "1").replace("{endpoint_id}", "1")
    body = {"specialties": ["cardiology"]} if method in ("POST", "PATCH") else None
    return api.request(method, url, headers=headers, json=body)


def test_every_api_route_is_guarded_by_a_scope() -> None:
    assert len(ROUTES) >= 14
    assert {scope for _, _, scope in ROUTES} == set(SCOPES)


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_scope_checks(api: TestClient, services: Services, method: str, path: str, scope: str) -> None:
    assert _call(api, method, path, {}).status_code == 401
    assert _call(api, method, path, {"Authorization": "Bearer dg_unknown_key"}).status_code == 401
    others = key_with(services, *(s for s in SCOPES if s != scope))
    denied = _call(api, method, path, others)
    assert denied.status_code == 403 and scope in denied.json()["detail"]
    allowed = _call(api, method, path, key_with(services, scope))
    assert allowed.status_code not in (401, 403)


def test_keys_are_stored_hashed_and_revocable(cli, services: Services, api: TestClient) -> None:  # type: ignore[no-untyped-def]
    created = cli("api-keys", "create", "--scope", "subscribers:read", "--name", "crm")
    assert created.exit_code == 0
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("dg_")
    with session_scope(services.sessions) as s:
        [row] = s.scalars(select(ApiKey)).all()
        assert row.key_hash == key_hash(key) and key not in (row.prefix, row.key_hash, row.scopes)
        assert key.startswith(row.prefix + "_")
        prefix = row.prefix
    auth = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/subscribers", headers=auth).status_code == 200
    listing = cli("api-keys", "list")
    assert prefix in listing.stdout and key not in listing.stdout
    assert cli("api-keys", "create", "--scope", "everything").exit_code == 2
    assert cli("api-keys", "revoke", prefix).exit_code == 0
    assert api.get("/api/subscribers", headers=auth).status_code == 401
    assert cli("api-keys", "revoke", prefix).exit_code == 1


def test_the_ingest_token_still_posts_summaries(api: TestClient, services: Services) -> None:
    services.settings.ingest_token = "old-ingest-token"
    answer = api.post(
        "/api/summaries", json=summary_record(id="s-1"), headers={"Authorization": "Bearer old-ingest-token"}
    )
    assert answer.status_code == 201
    # ... and nothing else: the old token carries no other scope.
    assert api.get("/api/summaries/s-1", headers={"Authorization": "Bearer old-ingest-token"}).status_code == 401
    keyed = api.post("/api/summaries", json=summary_record(id="s-2"), headers=key_with(services, "summaries:write"))
    assert keyed.status_code == 201


def test_subscriber_lifecycle_through_the_api(api: TestClient, services: Services, smtp_sink: SMTPSink) -> None:
    write = key_with(services, "subscribers:write", "subscribers:read")
    pending = api.post(
        "/api/subscribers", json={"email": "Ada@Example.org", "specialties": ["cardiology"]}, headers=write
    )
    assert pending.status_code == 201 and pending.json()["status"] == "pending"
    [mail] = smtp_sink.messages  # the double opt-in email
    assert mail["To"] == "ada@example.org" and "Confirm" in mail["Subject"]

    confirmed = api.post(
        "/api/subscribers",
        json={"email": "bo@example.org", "specialties": ["oncology"], "confirmed": True, "timezone": "Europe/Paris"},
        headers=write,
    )
    assert confirmed.status_code == 201 and confirmed.json()["status"] == "active"
    assert len(smtp_sink.messages) == 1  # no email for an operator-confirmed subscriber
    bo = confirmed.json()["id"]

    assert api.get(f"/api/subscribers/{bo}", headers=write).json()["timezone"] == "Europe/Paris"
    changed = api.patch(
        f"/api/subscribers/{bo}", json={"specialties": ["cardiology", "oncology"], "paused": True}, headers=write
    )
    assert changed.status_code == 200
    assert changed.json()["specialties"] == ["cardiology", "oncology"] and changed.json()["status"] == "paused"
    assert api.patch(f"/api/subscribers/{bo}", json={"timezone": "Mars/Base"}, headers=write).status_code == 422
    assert api.patch(f"/api/subscribers/{bo}", json={"specialties": ["astrology"]}, headers=write).status_code == 422

    gone = api.post(f"/api/subscribers/{bo}/unsubscribe", headers=write)
    assert gone.status_code == 200 and gone.json()["status"] == "unsubscribed"
    assert api.post(f"/api/subscribers/{bo}/unsubscribe", headers=write).status_code == 200  # harmless again
    assert api.patch(f"/api/subscribers/{bo}", json={"cadence": "weekly"}, headers=write).status_code == 409
    again = api.post("/api/subscribers", json={"email": "bo@example.org", "specialties": ["oncology"]}, headers=write)
    assert again.status_code == 409

    export = api.get(f"/api/subscribers/{bo}/export", headers=write).json()
    assert [e["action"] for e in export["consent_events"]] == ["added", "preferences", "unsubscribed"]
    assert {e["method"] for e in export["consent_events"]} == {"api"}

    assert api.delete(f"/api/subscribers/{bo}", headers=write).status_code == 204
    assert api.get(f"/api/subscribers/{bo}", headers=write).status_code == 404
    refused = api.post(
        "/api/subscribers",
        json={"email": "bo@example.org", "specialties": ["oncology"], "confirmed": True},
        headers=write,
    )
    assert refused.status_code == 409 and "suppress" in refused.json()["detail"]
    with session_scope(services.sessions) as s:
        assert find_subscriber(s, "bo@example.org") is None
        assert s.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == bo)).all() == []


def test_paging_over_ten_thousand_subscribers(api: TestClient, services: Services) -> None:
    people = [(f"p{i:05d}@example.org", "", ["cardiology"] if i % 3 else ["oncology"]) for i in range(10_000)]
    with session_scope(services.sessions) as s:
        bulk_subscribers(s, people, created_at=services.clock() - timedelta(days=1))
        expected = list(s.scalars(select(Subscriber.id).order_by(Subscriber.id)))
    read = key_with(services, "subscribers:read")

    def walk(**filters: str) -> tuple[list[int], int]:
        seen: list[int] = []
        pages = 0
        params: dict[str, str] = {"limit": "500", **filters}
        while True:
            page = api.get("/api/subscribers", params=params, headers=read)
            assert page.status_code == 200
            body = page.json()
            seen += [item["id"] for item in body["items"]]
            pages += 1
            if body["next_cursor"] is None:
                return seen, pages
            params["cursor"] = body["next_cursor"]

    ids, pages = walk()
    assert ids == expected and len(ids) == 10_000 and pages == 20  # each once, in order
    oncology, _ = walk(specialty="oncology")
    assert len(oncology) == len([p for i, p in enumerate(people) if i % 3 == 0]) == 3334
    assert api.get("/api/subscribers", params={"cursor": "!!not-ours"}, headers=read).status_code == 422
    assert api.get("/api/subscribers", params={"limit": "501"}, headers=read).status_code == 422


def test_summaries_and_issues(api: TestClient, services: Services) -> None:
    now = services.clock()
    planned_issue(services, now, [("r@example.org", "", ["cardiology"])])
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="s-9", specialties=["oncology"], title="Nine"))
    read = key_with(services, "summaries:read", "issues:read")
    summary = api.get("/api/summaries/s-9", headers=read)
    assert summary.status_code == 200 and summary.json()["title"] == "Nine"
    assert summary.json()["language"] == "en" and summary.json()["status"] == "published"
    versions = api.get("/api/summaries/s-9/versions", headers=read).json()
    assert [(v["version"], v["changed"], v["material"]) for v in versions["versions"]] == [(1, [], False)]
    assert api.get("/api/summaries/nope/versions", headers=read).status_code == 404
    assert api.get("/api/summaries/nope", headers=read).status_code == 404
    from digest.ledger.models import Issue

    with session_scope(services.sessions) as s:
        issue_id = s.scalars(select(Issue.id)).one()
    issue = api.get(f"/api/issues/{issue_id}", headers=read).json()
    assert issue["figures"]["recipients"] == 1 and issue["figures"]["pending"] == 1
    assert api.get("/api/issues/999999", headers=read).status_code == 404


def test_summary_versions_are_the_recorded_ones(api: TestClient, services: Services) -> None:
    """A summary edited cosmetically, then corrected: the API lists the versions the summary's page
    shows, newest first, with what changed, the earlier values, material or not, status and note."""
    note = "The hazard ratio was mistyped as 0.08; it is 0.80."
    record = summary_record(id="s-v", title="Trial with a history", key_takeaway="Lowered risk (HR 0.08).")
    reworded = {**record, "summary": "A randomised trial; typo fixed."}
    corrected = {**reworded, "key_takeaway": "Lowered risk (HR 0.80).", "status": "corrected", "correction_note": note}
    with session_scope(services.sessions) as s:
        add_summaries(s, record)
        add_summaries(s, reworded)
        add_summaries(s, corrected)
        stored = [
            (v.version, v.created_at)
            for v in s.scalars(select(VersionRow).where(VersionRow.summary_id == "s-v").order_by(VersionRow.version))
        ]
    read = key_with(services, "summaries:read")
    current = api.get("/api/summaries/s-v", headers=read).json()
    assert current["status"] == "corrected" and current["correction_note"] == note and current["version"] == 3
    assert current["key_takeaway"] == "Lowered risk (HR 0.80)." and current["language"] == "en"

    answer = api.get("/api/summaries/s-v/versions", headers=read)
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == "s-v" and body["version"] == 3
    third, second, first = body["versions"]
    assert [v["version"] for v in body["versions"]] == [3, 2, 1]
    assert [datetime.fromisoformat(v["recorded_at"]) for v in reversed(body["versions"])] == [t for _, t in stored]
    assert set(third["changed"]) == {"key_takeaway", "status", "correction_note"}
    assert third["previous"]["key_takeaway"] == "Lowered risk (HR 0.08)." and third["previous"]["status"] == "published"
    assert third["material"] is True and third["status"] == "corrected" and third["note"] == note
    assert second["changed"] == ["summary"] and second["previous"] == {"summary": record["summary"]}
    assert second["material"] is False and second["status"] == "published" and second["note"] is None
    assert first["changed"] == [] and first["previous"] == {} and first["status"] == "published"


def test_webhook_endpoints_through_the_api(api: TestClient, services: Services) -> None:
    hooks = key_with(services, "webhooks:write")
    made = api.post(
        "/api/webhooks",
        json={"url": "https://crm.example.org/h", "events": ["subscribed", "issue.sent"]},
        headers=hooks,
    )
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    listed = api.get("/api/webhooks", headers=hooks).json()
    assert [e["events"] for e in listed] == [["issue.sent", "subscribed"]] and listed[0]["secret"] is None
    assert (
        api.post("/api/webhooks", json={"url": "https://x.org", "events": ["nope"]}, headers=hooks).status_code == 422
    )
    assert api.get(f"/api/webhooks/{made.json()['id']}/deliveries", headers=hooks).json() == []
    assert api.delete(f"/api/webhooks/{made.json()['id']}", headers=hooks).status_code == 204
    assert api.delete(f"/api/webhooks/{made.json()['id']}", headers=hooks).status_code == 404


def test_every_api_route_has_an_example_in_openapi(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def has_example(node: dict) -> bool:  # type: ignore[type-arg]
        if "example" in node or "examples" in node:
            return True
        ref = node.get("schema", node).get("$ref") or node.get("schema", {}).get("items", {}).get("$ref")
        if ref:
            return "examples" in components[ref.rsplit("/", 1)[-1]]
        return False

    for path, item in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in item.items():
            bodies = [op["requestBody"]["content"]["application/json"]] if "requestBody" in op else []
            ok = op["responses"].get("200") or op["responses"].get("201") or op["responses"].get("204")
            answers = list(ok.get("content", {}).values()) if ok else []
            documented = [b for b in bodies + answers if has_example(b)]
            assert documented or (not bodies and not answers), f"{method.upper()} {path} has no example"
            assert "403" in op["responses"] and "401" in op["responses"], f"{method.upper()} {path}"
