"""Who may call the JSON API: a bearer API key carrying the route's scope (digest.integrations.apikeys).

``DIGEST_INGEST_TOKEN``, the API's first credential, still works for what it always allowed:
``POST /api/summaries`` (scope ``summaries:write``). A missing or unknown key is 401; a key without
the route's scope is 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digest.db import session_scope
from digest.integrations.apikeys import SCOPES, authenticate, scopes_of
from digest.web.deps import ServicesDep

bearer = HTTPBearer(
    auto_error=False,
    description="an API key (`digest api-keys create --scope ...`); for POST /api/summaries also DIGEST_INGEST_TOKEN",
)


def require_scope(scope: str) -> Callable[..., None]:
    """A dependency that lets the request through only with a key carrying ``scope``."""
    assert scope in SCOPES, scope

    def check(
        request: Request,
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials if credentials else ""
        ingest = services.settings.ingest_token
        if scope == "summaries:write" and ingest and given and hmac.compare_digest(given.encode(), ingest.encode()):
            return
        if given:
            with session_scope(services.sessions) as session:
                key = authenticate(session, given, services.clock())
                scopes = scopes_of(key) if key else None
            if scopes is not None:
                if scope not in scopes:
                    raise HTTPException(403, detail=f"this API key lacks the scope {scope}")
                request.state.api_scopes = scopes
                return
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required: an API key (digest api-keys create)"
            + (" or DIGEST_INGEST_TOKEN" if scope == "summaries:write" else ""),
            headers={"WWW-Authenticate": "Bearer"},
        )

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check
