"""Schemathesis over the JSON API's routes (/api/...), called with a key that carries every scope so
that the cases reach the handlers: whatever the generated ids, filters, cursors and bodies, no
route answers 5xx, and every answer's status code, content type and body match what /openapi.json
declares for it (schemathesis's status-code, content-type and response-schema checks).

Generated ids rarely name a row, so most generated cases get a 404; ``test_answers_about_real_rows
_match_their_schema`` calls every route with the ids of real rows (a corrected summary with its
versions, an issue with figures, a subscriber, a webhook endpoint with a delivery) and with a
foreign cursor, and holds those answers to the same checks."""

from __future__ import annotations

from datetime import timedelta

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from digest.db import session_scope
from digest.integrations.apikeys import SCOPES, create_key
from digest.integrations.models import WebhookDelivery, WebhookEndpoint
from digest.integrations.webhooks import new_secret
from digest.ledger.models import Delivery
from digest.rights import find_subscriber
from digest.web.app import create_app
from digest.wiring import Services
from tests.factories import add_summaries, bulk_subscribers, planned_issue, summary_record

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

_state: dict[int, tuple[list[APIOperation], dict[str, str]]] = {}


def _setup(services: Services) -> tuple[list[APIOperation], dict[str, str]]:
    """The /api operations and an all-scopes key, made once per test (not once per example)."""
    if id(services) not in _state:
        _state.clear()
        with session_scope(services.sessions) as s:
            _, key = create_key(s, list(SCOPES), "fuzz", services.clock())
            bulk_subscribers(
                s,
                [(f"f{i}@example.org", "", ["cardiology"]) for i in range(5)],
                created_at=services.clock() - timedelta(days=1),
            )
            add_summaries(s, summary_record(id="s-1"))
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services))
        operations = [r.ok() for r in schema.get_all_operations()]
        _state[id(services)] = (
            [o for o in operations if o.path.startswith("/api/")],
            {"Authorization": f"Bearer {key}"},
        )
    return _state[id(services)]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_no_api_route_answers_a_server_error(services: Services, data: st.DataObject) -> None:
    operations, auth = _setup(services)
    assert len(operations) >= 14
    operation = data.draw(st.sampled_from(operations), label="operation")
    case = data.draw(operation.as_strategy(), label=f"{operation.method.upper()} {operation.path}")
    response = case.call(headers=auth)
    assert response.status_code not in (401, 403), response.text  # the cases reach the handlers
    case.validate_response(
        response,
        checks=CHECKS,
    )


def test_answers_about_real_rows_match_their_schema(services: Services) -> None:
    operations, auth = _setup(services)
    now = services.clock()
    planned_issue(services, now, [("real@example.org", "Real Reader", ["cardiology"])])
    record = summary_record(id="s-2", key_takeaway="HR 0.08.")
    with session_scope(services.sessions) as s:
        add_summaries(s, record)
        add_summaries(s, {**record, "summary": "Reworded."})
        add_summaries(s, {**record, "key_takeaway": "HR 0.80.", "status": "corrected", "correction_note": "Typo."})
        real = find_subscriber(s, "real@example.org")
        assert real is not None
        delivery = s.scalars(select(Delivery).where(Delivery.subscriber_id == real.id)).one()
        ids = {"subscriber_id": delivery.subscriber_id, "issue_id": delivery.issue_id, "summary_id": "s-2"}
        endpoint = WebhookEndpoint(url="http://127.0.0.1:9/hook", secret=new_secret(), events="subscribed")
        s.add(endpoint)
        s.flush()
        ids["endpoint_id"] = endpoint.id
        s.add(
            WebhookDelivery(
                endpoint_id=endpoint.id, message_id="msg_1", event="subscribed", payload="{}", next_attempt_at=now
            )
        )
    by_route = {(o.method.upper(), o.path): o for o in operations}
    calls = [
        ("GET", "/api/subscribers", {}, {"limit": 2}, 200),
        ("GET", "/api/subscribers", {}, {"cursor": "!!not-ours"}, 422),
        ("GET", "/api/subscribers/{subscriber_id}", {"subscriber_id": ids["subscriber_id"]}, {}, 200),
        ("GET", "/api/subscribers/{subscriber_id}/export", {"subscriber_id": ids["subscriber_id"]}, {}, 200),
        ("GET", "/api/summaries/{summary_id}", {"summary_id": "s-2"}, {}, 200),
        ("GET", "/api/summaries/{summary_id}/versions", {"summary_id": "s-2"}, {}, 200),
        ("GET", "/api/issues/{issue_id}", {"issue_id": ids["issue_id"]}, {}, 200),
        ("GET", "/api/webhooks", {}, {}, 200),
        ("GET", "/api/webhooks/{endpoint_id}/deliveries", {"endpoint_id": ids["endpoint_id"]}, {}, 200),
        ("PATCH", "/api/subscribers/{subscriber_id}", {"subscriber_id": ids["subscriber_id"]}, {}, 200),
        ("POST", "/api/subscribers/{subscriber_id}/unsubscribe", {"subscriber_id": ids["subscriber_id"]}, {}, 200),
        ("DELETE", "/api/subscribers/{subscriber_id}", {"subscriber_id": ids["subscriber_id"]}, {}, 204),
    ]
    bodies = {"PATCH": {"cadence": "weekly"}}
    for method, path, params, query, status in calls:
        operation = by_route[(method, path)]
        body = bodies.get(method)
        case = operation.Case(path_parameters=params, query=query, **({"body": body} if body else {}))
        response = case.call(headers=auth)
        assert response.status_code == status, (method, path, response.text)
        case.validate_response(response, checks=CHECKS)
    versions = by_route[("GET", "/api/summaries/{summary_id}/versions")].Case(path_parameters={"summary_id": "s-2"})
    assert [v["version"] for v in versions.call(headers=auth).json()["versions"]] == [3, 2, 1]
