"""The JSON API: ``POST /api/summaries`` ingests summary records, as ``digest import`` does.

Authentication: an API key with the scope ``summaries:write`` (digest/web/api_auth.py), or the
bearer token ``DIGEST_INGEST_TOKEN`` as before; without either the route answers 401.
The body is one summary object or a list of them. Records are upserted by ``id``, all or nothing:
any invalid record rejects the whole request with 422 and every error's record number (1-based
position in the list) and field.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from digest.db import session_scope
from digest.errors import InputError, InvalidInput
from digest.ingest.schema import SummaryIn
from digest.ingest.service import import_summaries
from digest.web.api_auth import require_scope
from digest.web.deps import ServicesDep


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


router = APIRouter(prefix="/api", tags=["api"])

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
                },
                "example": {
                    "id": "nejm-2026-0412",
                    "title": "Colchicine after myocardial infarction",
                    "key_takeaway": "Low-dose colchicine cut recurrent ischaemic events by a quarter.",
                    "specialties": ["cardiology"],
                    "published_at": "2026-11-20T08:00:00Z",
                    "study": {"type": "RCT", "sample_size": 4745, "evidence_level": 1},
                    "source_url": "https://www.nejm.org/doi/full/10.1056/NEJMoa1912388",
                },
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
        403: {"model": Problem, "description": "the API key lacks the scope summaries:write"},
        422: {"model": Rejected, "description": "invalid records, each error located"},
    },
    openapi_extra=_BODY,
    dependencies=[Depends(require_scope("summaries:write"))],
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
