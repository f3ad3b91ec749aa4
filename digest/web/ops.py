"""Operations routes: ``GET /healthz`` for load balancers and orchestrators, ``GET /metrics`` for Prometheus.

The app puts its ``Services`` on ``app.state.services``; ``digest.web.deps.ServicesDep`` hands them to the routes.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from digest.observability import exposition, health
from digest.web.deps import ServicesDep

router = APIRouter(tags=["operations"])

# What ``generate_latest`` writes, and what every Prometheus version reads.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz")
def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the database (and the broker, if configured) answer; 503 naming the part that does not."""
    ok, parts = health(services.engine, services.settings.broker_url)
    return JSONResponse(parts, status_code=200 if ok else 503)


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    """Prometheus text format: what every process of this host counted, and the queue depth."""
    return Response(
        exposition(services.metrics.directory, services.settings.broker_url, services.engine),
        media_type=PROMETHEUS_TEXT,
    )
