"""What the routers share: the services, the page templates, the client address, error pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment

from digest.resources import template_loader
from digest.wiring import Services

templates = Jinja2Templates(env=Environment(loader=template_loader(), autoescape=True))


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
# A row id in a path: the database's INTEGER range, so that an id no row can have is refused with
# a 422 before it reaches a driver (SQLite's cannot even bind one beyond 64 bits).
IssueId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def client_address(request: Request) -> str:
    """The client's IP (uvicorn resolves X-Forwarded-For from trusted proxies before this)."""
    return request.client.host if request.client else "unknown"


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/web/<name>.html`` with the list name and base URL available."""
    services = get_services(request)
    context.setdefault("list_name", services.settings.list_name)
    context.setdefault("postal_address", services.settings.postal_address)
    return templates.TemplateResponse(request, f"web/{name}.html", context, status_code=status_code)


def invalid_link(request: Request, status_code: int = 400) -> HTMLResponse:
    """The one page for every forged, garbled, expired or dangling link: it says nothing more."""
    return page(request, "invalid_link", status_code=status_code, title="This link is not valid")
