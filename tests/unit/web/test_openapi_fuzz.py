"""Schemathesis against the app's own ``/openapi.json`` (through its ASGI interface): whatever the
generated path parameters, query strings, forms and bodies, no route answers 5xx.

The operations are driven from one Hypothesis test (schemathesis' own pytest loader does not work
with pytest 9 yet): each example picks an operation and draws one case for it.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error

from digest.web.app import create_app
from digest.wiring import Services

_schemas: dict[int, list[APIOperation]] = {}


def _operations(services: Services) -> list[APIOperation]:
    """The schema's operations, loaded once per test (not once per example)."""
    if id(services) not in _schemas:
        _schemas.clear()
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services))
        _schemas[id(services)] = [result.ok() for result in schema.get_all_operations()]
    return _schemas[id(services)]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_no_route_answers_a_server_error(services: Services, data: st.DataObject) -> None:
    operations = _operations(services)
    assert len(operations) >= 8  # the public pages, the webhooks and the operations routes
    operation = data.draw(st.sampled_from(operations), label="operation")
    case = data.draw(operation.as_strategy(), label=f"{operation.method.upper()} {operation.path}")
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
