"""Operations routes: ``GET /healthz`` for load balancers and orchestrators, ``GET /metrics`` for Prometheus.

The app puts its ``Services`` on ``app.state.services``; ``digest.web.deps.ServicesDep`` hands them to the routes.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
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
def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format: what every process of this host counted, and the queue depth.
    With DIGEST_METRICS_TOKEN set, only to ``Authorization: Bearer <token>``; without it, only to
    clients on this host (loopback): the figures are not for the public."""
    token = services.settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"detail": "metrics need the bearer token"}, status_code=401)
    elif not _loopback(request.client.host if request.client else ""):
        return JSONResponse(
            {"detail": "metrics are served to loopback clients only; set DIGEST_METRICS_TOKEN to scrape remotely"},
            status_code=403,
        )
    return Response(
        exposition(
            services.metrics.directory, services.settings.broker_url, services.engine, services.delivery.limiter.current
        ),
        media_type=PROMETHEUS_TEXT,
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
