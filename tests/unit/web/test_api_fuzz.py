"""Schemathesis over the JSON API's routes (/api/...), called with a key that carries every scope so
that the cases reach the handlers: whatever the generated ids, filters, cursors and bodies, no
route answers 5xx, and every answer matches its documented schema where one is declared."""

from __future__ import annotations

from datetime import timedelta

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error

from digest.db import session_scope
from digest.integrations.apikeys import SCOPES, create_key
from digest.web.app import create_app
from digest.wiring import Services
from tests.factories import add_summaries, bulk_subscribers, summary_record

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
    case.validate_response(response, checks=[not_a_server_error])
