"""GET /healthz and GET /metrics on a minimal app that mounts the operations router."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import kombu.transport
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digest.config import Settings
from digest.web.ops import router
from digest.wiring import Services, build_services


def client_for(services: Services, client: str = "127.0.0.1") -> TestClient:
    app = FastAPI()
    app.include_router(router)
    app.state.services = services
    return TestClient(app, client=(client, 50000))


@pytest.fixture
def built(settings: Settings) -> Iterator[list[Services]]:
    """Services built from variations of the test settings, closed afterwards."""
    made: list[Services] = []
    yield made
    for svc in made:
        svc.close()


def _services(built: list[Services], settings: Settings, **changes: object) -> Services:
    svc = build_services(settings.model_copy(update=changes))
    built.append(svc)
    return svc


def test_healthy_without_a_broker(services: Services) -> None:
    response = client_for(services).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "not configured"}


def test_healthy_with_the_redis_broker(built: list[Services], settings: Settings, redis_url: str) -> None:
    response = client_for(_services(built, settings, broker_url=redis_url)).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"database": "ok", "broker": "ok"})


def test_unreachable_broker_is_named(built: list[Services], settings: Settings) -> None:
    response = client_for(_services(built, settings, broker_url="redis://127.0.0.1:1/0")).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable: ConnectionError"}


def test_broker_transport_that_cannot_load_is_unhealthy(
    built: list[Services], settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server answers, but kombu's Redis transport cannot be imported (as when ``packaging``,
    which it imports, was missing from an install): the tasks could not be queued, so 503."""
    monkeypatch.setattr(kombu.transport, "_transport_cache", {})  # kombu keeps the classes it loaded
    monkeypatch.delitem(sys.modules, "kombu.transport.redis", raising=False)
    monkeypatch.setitem(sys.modules, "packaging.version", None)  # importing it now raises ImportError
    response = client_for(_services(built, settings, broker_url=redis_url)).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unavailable: ModuleNotFoundError"}


def test_unreachable_database_is_named(built: list[Services], settings: Settings) -> None:
    svc = _services(built, settings, database_url="postgresql+psycopg://digest@127.0.0.1:1/digest")
    response = client_for(svc).get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable: OperationalError", "broker": "not configured"}


def test_metrics_speaks_the_prometheus_text_format(services: Services) -> None:
    response = client_for(services).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_metrics_are_not_public(services: Services) -> None:
    """Without DIGEST_METRICS_TOKEN only loopback clients are served; with it, only the bearer."""
    assert client_for(services, "203.0.113.7").get("/metrics").status_code == 403
    services.settings.metrics_token = "scrape-token"
    remote = client_for(services, "203.0.113.7")
    assert remote.get("/metrics").status_code == 401
    assert client_for(services).get("/metrics").status_code == 401  # the token is needed from loopback too
    assert remote.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert remote.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).status_code == 200
