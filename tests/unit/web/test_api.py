"""POST /api/summaries: bearer token, the errors of ``digest import`` (record number and field) as 422,
upsert by id as 201 with counts, and the OpenAPI schema that describes it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.ingest.models import Summary
from digest.wiring import Services
from tests.factories import summary_record

TOKEN = "ingest-token-for-tests"


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    from digest.web.app import create_app

    services.settings.ingest_token = TOKEN
    with TestClient(create_app(services), follow_redirects=False) as client:
        yield client


def _titles(services: Services) -> dict[str, str]:
    with session_scope(services.sessions) as s:
        return dict(s.execute(select(Summary.id, Summary.title)).all())


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_without_the_right_token_401_and_nothing_written(
    api: TestClient, services: Services, headers: dict[str, str]
) -> None:
    response = api.post("/api/summaries", json=summary_record(id="s-1"), headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert _titles(services) == {}


def test_closed_when_no_token_is_configured(web: TestClient, services: Services) -> None:
    response = web.post("/api/summaries", json=summary_record(id="s-1"), headers={"Authorization": "Bearer "})
    assert response.status_code == 401 and "DIGEST_INGEST_TOKEN" in response.json()["detail"]


def test_one_object_then_a_list_upserts_by_id(api: TestClient, services: Services) -> None:
    response = api.post("/api/summaries", json=summary_record(id="s-1", title="First"), headers=AUTH)
    assert response.status_code == 201 and response.json() == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "cleaned": [],
    }
    records = [summary_record(id="s-1", title="First, revised"), summary_record(id="s-2", title="Second")]
    response = api.post("/api/summaries", json=records, headers=AUTH)
    assert response.status_code == 201 and response.json() == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "cleaned": [],
    }
    assert _titles(services) == {"s-1": "First, revised", "s-2": "Second"}


def test_invalid_records_422_with_every_error_located_and_nothing_written(api: TestClient, services: Services) -> None:
    bad = [
        summary_record(id="ok-1"),
        summary_record(id="bad-2", specialties=["astrology"]),
        {k: v for k, v in summary_record(id="bad-3").items() if k != "key_takeaway"},
    ]
    response = api.post("/api/summaries", json=bad, headers=AUTH)
    assert response.status_code == 422
    located = {(e["record"], e["field"]) for e in response.json()["errors"]}
    assert located == {(2, "specialties"), (3, "key_takeaway")}
    assert _titles(services) == {}


def test_a_body_that_is_not_json_is_422(api: TestClient) -> None:
    response = api.post("/api/summaries", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["errors"][0]["record"] == 0


def test_openapi_documents_the_api(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    op = schema["paths"]["/api/summaries"]["post"]
    assert set(op["responses"]) >= {"201", "401", "422"}
    body = op["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {"$ref": "#/components/schemas/SummaryIn"} in body
    assert "key_takeaway" in schema["components"]["schemas"]["SummaryIn"]["properties"]
    assert any("HTTPBearer" in s for s in op.get("security", [{}])[0]) or "HTTPBearer" in schema["components"].get(
        "securitySchemes", {}
    )
    assert not any(path.startswith("/editor") for path in schema["paths"])
