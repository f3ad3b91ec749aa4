"""The web version of a summary, ``GET /summaries/{id}``: as it stands now, marked corrected or
retracted, with its history (each version, its date, what changed and the correction note)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from digest.db import session_scope
from digest.ingest.models import Summary, SummaryVersion
from digest.ingest.versions import field_name
from digest.rendering.compiled import EVIDENCE_LEVELS
from digest.web.deps import ServicesDep, page, page_gettext, request_locale

router = APIRouter(tags=["archive"], default_response_class=HTMLResponse)
SummaryId = Annotated[str, Path(max_length=200, pattern=r"^[\w.:-]+$")]


@router.get("/summaries/{summary_id}", summary="A summary as it stands now, with its versions and corrections")
def summary_page(request: Request, summary_id: SummaryId, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as session:
        summary = session.get(Summary, summary_id)
        if summary is None:
            gettext = page_gettext(request)
            return page(request, "not_found", status_code=404, title=gettext("No such summary"))
        versions = session.scalars(
            select(SummaryVersion)
            .where(SummaryVersion.summary_id == summary_id)
            .order_by(SummaryVersion.version.desc())
        ).all()
        locale = request_locale(request)
        history = [
            {
                "version": v.version,
                "date": v.created_at,
                "changed": [field_name(f, locale) for f in v.changed],
                "material": v.material,
                "status": v.status,
                "note": v.note,
            }
            for v in versions
        ]
        return page(
            request,
            "summary",
            title=summary.title,
            summary=summary,
            specialties=[s.name for s in summary.specialties],
            evidence_levels=EVIDENCE_LEVELS,
            history=history,
        )
