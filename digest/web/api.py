"""The JSON API: ``POST /api/summaries`` ingests summary records, as ``digest import`` does.

Authentication is a bearer token (``DIGEST_INGEST_TOKEN``); without the setting the API is closed.
The body is one summary object or a list of them. Records are upserted by ``id``, all or nothing:
any invalid record rejects the whole request with 422 and every error's record number (1-based
position in the list) and field.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from digest.db import session_scope
from digest.errors import InputError, InvalidInput
from digest.ingest.schema import SummaryIn
from digest.ingest.service import import_summaries
from digest.web.deps import ServicesDep

bearer = HTTPBearer(auto_error=False, description="the value of DIGEST_INGEST_TOKEN")


class RecordError(BaseModel):
    record: int  # 1-based position in the body's list (1 for a single object); 0: the body itself
    field: str  # dotted path of the field, "" for the whole record
    message: str


class ImportCounts(BaseModel):
    created: int
    updated: int
    unchanged: int
    cleaned: list[RecordError] = []  # fields whose control or direction characters were removed


class Rejected(BaseModel):
    detail: str
    errors: list[RecordError]


class Problem(BaseModel):
    detail: str


def require_token(
    services: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    expected = services.settings.ingest_token
    given = credentials.credentials if credentials else ""
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required"
            if expected
            else "the ingest API is closed: DIGEST_INGEST_TOKEN is not set",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(require_token)])

_ITEM_SCHEMA = SummaryIn.model_json_schema(ref_template="#/components/schemas/{model}")
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/SummaryIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/SummaryIn"}},
                    ]
                }
            }
        },
    }
}


def _rejected(errors: list[InputError]) -> JSONResponse:
    body = Rejected(
        detail=f"{len(errors)} error(s); nothing was imported",
        errors=[RecordError(record=e.record, field=e.field, message=e.message) for e in errors],
    )
    return JSONResponse(body.model_dump(), status_code=422)


@router.post(
    "/summaries",
    status_code=201,
    summary="Import summaries (one object or a list); upserts by id, all or nothing",
    response_model=ImportCounts,
    responses={
        401: {"model": Problem, "description": "missing or wrong bearer token"},
        422: {"model": Rejected, "description": "invalid records, each error located"},
    },
    openapi_extra=_BODY,
)
async def post_summaries(request: Request, services: ServicesDep) -> Any:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeError) as exc:
        return _rejected([InputError(0, "", f"the body is not JSON: {exc}")])
    items = body if isinstance(body, list) else [body]
    with session_scope(services.sessions) as session:
        try:
            report = import_summaries(session, list(enumerate(items, start=1)))
        except InvalidInput as exc:
            session.rollback()
            return _rejected(exc.errors)
    return ImportCounts(
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        cleaned=[RecordError(record=e.record, field=e.field, message=e.message) for e in report.cleaned],
    )


def add_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put SummaryIn (and the models it refers to) into the OpenAPI components the body names."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    item = dict(_ITEM_SCHEMA)
    schemas.update(item.pop("$defs", {}))
    schemas["SummaryIn"] = item
    return openapi
