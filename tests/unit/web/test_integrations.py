"""The dashboard's integrations page: API keys (created and shown once, listed by prefix, revoked)
and webhook endpoints (added with their secret shown once, removed), and webhook deliveries with
failed ones shown first and a button to try them again."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.integrations.models import ApiKey, WebhookDelivery, WebhookEndpoint, WebhookStatus
from digest.wiring import Services
from tests.unit.web.conftest import csrf_of


def test_keys_are_created_shown_once_and_revoked(editor_client: TestClient, services: Services) -> None:
    page = editor_client.get("/editor/integrations")
    assert page.status_code == 200 and "No API keys yet." in page.text
    made = editor_client.post(
        "/editor/integrations/keys",
        data={"name": "crm", "scopes": ["subscribers:read", "issues:read"], "csrf_token": csrf_of(page.text)},
    )
    assert made.status_code == 200 and "copy it now" in made.text
    with session_scope(services.sessions) as s:
        [key] = s.scalars(select(ApiKey)).all()
        assert key.scopes == "issues:read subscribers:read" and key.name == "crm"
        key_id, prefix = key.id, key.prefix
    shown = made.text.split("copy it now")[1].split("<code>")[1].split("</code>")[0]
    assert shown.startswith(prefix + "_")
    again = editor_client.get("/editor/integrations")
    assert prefix in again.text and shown not in again.text  # the key itself is never shown again
    api = editor_client.get("/api/subscribers", headers={"Authorization": f"Bearer {shown}"})
    assert api.status_code == 200
    bad = editor_client.post("/editor/integrations/keys", data={"scopes": ["root"], "csrf_token": csrf_of(again.text)})
    assert bad.status_code == 400 and "unknown scope" in bad.text
    revoked = editor_client.post(f"/editor/integrations/keys/{key_id}/revoke", data={"csrf_token": csrf_of(again.text)})
    assert revoked.status_code == 303
    assert editor_client.get("/api/subscribers", headers={"Authorization": f"Bearer {shown}"}).status_code == 401
    assert "revoked" in editor_client.get("/editor/integrations").text


def test_endpoints_and_failed_deliveries_are_shown_and_retried(editor_client: TestClient, services: Services) -> None:
    page = editor_client.get("/editor/integrations")
    csrf = csrf_of(page.text)
    made = editor_client.post(
        "/editor/integrations/webhooks",
        data={"url": "http://127.0.0.1:9/hook", "events": ["unsubscribed", "bogus"], "csrf_token": csrf},
    )
    assert made.status_code == 200 and "whsec_" in made.text
    refused = editor_client.post(
        "/editor/integrations/webhooks", data={"url": "ftp://x", "events": ["unsubscribed"], "csrf_token": csrf}
    )
    assert refused.status_code == 400
    with session_scope(services.sessions) as s:
        [endpoint] = s.scalars(select(WebhookEndpoint)).all()
        assert endpoint.events == "unsubscribed"
        s.add_all(
            [
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    message_id="msg_ok",
                    event="unsubscribed",
                    payload="{}",
                    status=WebhookStatus.DELIVERED,
                    attempts=1,
                    last_status_code=204,
                ),
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    message_id="msg_bad",
                    event="unsubscribed",
                    payload="{}",
                    status=WebhookStatus.FAILED,
                    attempts=8,
                    last_status_code=500,
                    last_error="answered 500",
                ),
            ]
        )
        s.flush()
        failed_id = s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.message_id == "msg_bad")).one()
        endpoint_id = endpoint.id
    shown = editor_client.get("/editor/integrations").text
    deliveries = shown.split("Latest webhook deliveries")[1]
    assert deliveries.index("failed") < deliveries.index("delivered")  # failed first
    assert "answered 500" in deliveries and "Try again" in deliveries
    retried = editor_client.post(f"/editor/integrations/deliveries/{failed_id}/retry", data={"csrf_token": csrf})
    assert retried.status_code == 303
    with session_scope(services.sessions) as s:
        row = s.get(WebhookDelivery, failed_id)
        # Tried again at once (no broker here): port 9 refuses, so it waits for its next attempt.
        assert row is not None and (row.status, row.attempts) == (WebhookStatus.PENDING, 1)
        assert row.last_error and "Connection" in row.last_error
    removed = editor_client.post(f"/editor/integrations/webhooks/{endpoint_id}/remove", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert "No endpoints yet." in editor_client.get("/editor/integrations").text


def test_the_page_needs_an_editor(anonymous: TestClient, services: Services) -> None:
    assert anonymous.get("/editor/integrations").status_code == 303
    assert anonymous.post("/editor/integrations/keys", data={"scopes": ["issues:read"]}).status_code == 303
    with session_scope(services.sessions) as s:
        assert s.scalars(select(ApiKey)).all() == []
