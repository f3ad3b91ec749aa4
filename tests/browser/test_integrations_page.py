"""The dashboard's integrations page in Chromium, with a key just created (shown once), an endpoint
and a failed delivery listed: no serious or critical axe-core violation, in light and dark, at phone
and desktop widths."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page

from digest.db import session_scope
from digest.editors.service import EditorIn, create_editor
from digest.integrations.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from digest.integrations.webhooks import new_secret
from digest.web.app import create_app
from digest.wiring import Services
from tests.browser.a11y import audit, describe
from tests.unit.web.conftest import csrf_of, log_in


def _html(services: Services) -> str:
    with session_scope(services.sessions) as s:
        create_editor(s, EditorIn("ed@example.org", "correct horse battery", "Europe/Berlin"))
        endpoint = WebhookEndpoint(url="https://crm.example.org/hook", secret=new_secret(), events="unsubscribed")
        s.add(endpoint)
        s.flush()
        s.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                message_id="msg_1",
                event="unsubscribed",
                payload="{}",
                status=WebhookStatus.FAILED,
                attempts=8,
                last_status_code=500,
                last_error="answered 500",
            )
        )
    with TestClient(create_app(services), base_url="https://testserver", follow_redirects=False) as client:
        assert log_in(client, "ed@example.org", "correct horse battery").status_code == 303
        page = client.get("/editor/integrations")
        made = client.post(
            "/editor/integrations/keys",
            data={"name": "crm", "scopes": ["subscribers:read"], "csrf_token": csrf_of(page.text)},
        )
        assert made.status_code == 200
        return made.text


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_the_integrations_page_is_accessible(
    services: Services, new_page: Callable[[int, str], Page], width: int, scheme: str
) -> None:
    page = new_page(width, scheme)
    violations = audit(page, html=_html(services))
    assert not violations, f"integrations at {width}px, {scheme}:\n{describe(violations)}"
