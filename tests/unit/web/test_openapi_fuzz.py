"""Schemathesis against the app's own ``/openapi.json`` (through its ASGI interface): whatever the
generated path parameters, query strings, forms and bodies, no route answers 5xx.

The operations are driven from one Hypothesis test (schemathesis' own pytest loader does not work
with pytest 9 yet): each example draws one case for every operation of the schema.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from digest.web.app import create_app
from digest.wiring import Services


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_no_route_answers_a_server_error(services: Services, data: st.DataObject) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8  # the public pages, the webhooks and the operations routes
    for operation in operations:
        case = data.draw(operation.as_strategy(), label=f"{operation.method.upper()} {operation.path}")
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
