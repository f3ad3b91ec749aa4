"""The editor dashboard's corrections and safety alerts (/editor/corrections).

Pending corrections with how many readers, in which editions, got the earlier version; the note
they will read, editable until approval; approve (sent at once: a notice of its own or folded into
the next digests) or dismiss. A safety alert about any summary, sent now to the subscribers of its
specialties, and the figures of the alerts and notices sent so far. Every route is behind the
editor login and CSRF check of digest/web/editor.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from digest.corrections.alerts import send_alert
from digest.corrections.models import Correction, CorrectionStatus
from digest.corrections.review import review_versions
from digest.corrections.service import CorrectionNotFound, NotPending, approve, dismiss, readers_by_edition
from digest.db import session_scope
from digest.dispatch import dispatch_issue, send_corrections
from digest.i18n import N_
from digest.ingest.models import Summary, SummaryStatus
from digest.issues.figures import issue_figures
from digest.ledger.models import Issue, IssueKind
from digest.rendering.notices import localized_changes
from digest.web.deps import ServicesDep, explain, page_gettext, request_locale
from digest.web.editor import RECENT_SUMMARIES, EditorDep, current_editor, editor_page, local

router = APIRouter(
    prefix="/editor",
    tags=["editor"],
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(current_editor)],
)
NOTICES_SHOWN = 50


def _page(request: Request, services: Any, editor: Any, *, error: str = "", status: int = 200) -> HTMLResponse:
    locale = request_locale(request)
    with session_scope(services.sessions) as db:
        review_versions(db, services.clock())  # what was imported since the last send cycle
    with session_scope(services.sessions) as db:
        pending = []
        for c in db.scalars(
            select(Correction).where(Correction.status == CorrectionStatus.PENDING).order_by(Correction.id)
        ):
            summary = db.get(Summary, c.summary_id)
            pending.append(
                {
                    "id": c.id,
                    "kind": c.kind,
                    "summary_id": c.summary_id,
                    "title": summary.title if summary else c.summary_id,
                    "version": c.version,
                    "standalone": c.standalone,
                    "changed": localized_changes(c.changed, locale),
                    "note": c.note,
                    "readers": readers_by_edition(db, c),
                    "created": local(c.created_at, editor.timezone, locale),
                }
            )
        notices = db.scalars(
            select(Issue)
            .where(Issue.kind.in_((IssueKind.ALERT, IssueKind.CORRECTION)))
            .order_by(Issue.id.desc())
            .limit(NOTICES_SHOWN)
        ).all()
        sent = [
            {
                "kind": i.kind,
                "planned": local(i.planned_at, editor.timezone, locale),
                "figures": issue_figures(db, i.id),
            }
            for i in notices
        ]
        summaries = db.execute(
            select(Summary.id, Summary.title)
            .where(Summary.status != SummaryStatus.RETRACTED)
            .order_by(Summary.published_at.desc())
            .limit(RECENT_SUMMARIES)
        ).all()
    return editor_page(
        request,
        "corrections",
        editor,
        status_code=status,
        title=page_gettext(request)(N_("Corrections and safety alerts")),
        pending=pending,
        sent=sent,
        summaries=summaries,
        error=error,
    )


@router.get("/corrections")
def corrections_page(request: Request, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    return _page(request, services, editor)


@router.post("/corrections/{correction_id}/approve", response_model=None)
def approve_correction(
    request: Request,
    correction_id: int,
    editor: EditorDep,
    services: ServicesDep,
    note: Annotated[str, Form()] = "",
) -> Response:
    """Approve with the note as edited; planned and queued at once (the beat would within a minute)."""
    try:
        with session_scope(services.sessions) as db:
            approve(db, correction_id, by=editor.email, now=services.clock(), note=note)
    except (CorrectionNotFound, NotPending) as exc:
        return _page(request, services, editor, error=explain(request, exc), status=409)
    send_corrections(services)
    return RedirectResponse("/editor/corrections", status_code=303)


@router.post("/corrections/{correction_id}/dismiss", response_model=None)
def dismiss_correction(request: Request, correction_id: int, editor: EditorDep, services: ServicesDep) -> Response:
    try:
        with session_scope(services.sessions) as db:
            dismiss(db, correction_id)
    except (CorrectionNotFound, NotPending) as exc:
        return _page(request, services, editor, error=explain(request, exc), status=409)
    return RedirectResponse("/editor/corrections", status_code=303)


@router.post("/alerts", response_model=None)
def send_safety_alert(
    request: Request,
    editor: EditorDep,
    services: ServicesDep,
    summary_id: Annotated[str, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    """Send a safety alert about a summary now: planned, committed, then queued."""
    _ = page_gettext(request)
    with session_scope(services.sessions) as db:
        summary = db.get(Summary, summary_id)
        if summary is None:
            issue_id: int | None = None
            error = _("There is no summary %(id)s.") % {"id": repr(summary_id)}
        else:
            issue_id = send_alert(db, summary, note.strip() or summary.safety or summary.key_takeaway, services.clock())
            error = _("A safety alert about version %(version)s of this summary was already sent.") % {
                "version": summary.version
            }
    if issue_id is None:
        return _page(request, services, editor, error=error, status=409)
    dispatch_issue(services, issue_id)
    return RedirectResponse("/editor/corrections#sent", status_code=303)
