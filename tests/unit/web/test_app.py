"""``digest.web.app``: what every answer of the assembled app carries, and what it logs."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from digest.config import Settings
from digest.web.app import create_app
from digest.wiring import build_services


def test_a_5xx_answer_is_logged_with_its_route_template_not_its_path(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """No access log is kept (paths carry personal tokens), so a server error a route answers without
    raising is logged on its own: method and route template, at ERROR."""
    services = build_services(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    try:
        with caplog.at_level(logging.ERROR, logger="digest.web.app"):
            response = TestClient(create_app(services)).get("/healthz")
            ok = TestClient(create_app(services)).get("/")
    finally:
        services.close()
    assert response.status_code == 503 and ok.status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name == "digest.web.app"] == ["GET /healthz answered 503"]
