"""Operations routes: ``GET /healthz`` for load balancers and orchestrators, ``GET /metrics`` for Prometheus.

The app puts its ``Services`` on ``app.state.services``; :func:`get_services` hands them to the routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from digest.observability import exposition, health
from digest.wiring import Services

router = APIRouter(tags=["operations"])

# What ``generate_latest`` writes, and what every Prometheus version reads.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def get_services(request: Request) -> Services:
    """The services built once at start-up by the app (``app.state.services``)."""
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


@router.get("/healthz")
def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the database (and the broker, if configured) answer; 503 naming the part that does not."""
    ok, parts = health(services.engine, services.settings.broker_url)
    return JSONResponse(parts, status_code=200 if ok else 503)


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    """Prometheus text format: what every process of this host counted, and the queue depth."""
    return Response(exposition(services.metrics.directory, services.settings.broker_url), media_type=PROMETHEUS_TEXT)
