"""Reader relevance controls end to end: settings saved in the preference centre (and set directly)
change what selection picks, by evidence level, study type and count, and the digest says why."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.models import Subscriber
from digest.subscribers.relevance import RelevanceIn, apply_relevance
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

STUDIES = {  # id -> (evidence level, study type)
    "meta": (1, "Meta-analysis"),
    "rct": (2, "Randomised controlled trial"),
    "cohort": (3, "Cohort study"),
    "series": (4, "Case series"),
}


def _takeaway(summary_id: str) -> str:
    return f"Takeaway of the {summary_id} study."


def test_relevance_settings_change_what_selection_picks(
    services: Services, smtp_sink: SMTPSink, clock: Clock, web: TestClient
) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            *(
                summary_record(
                    id=sid,
                    key_takeaway=_takeaway(sid),
                    specialties=["cardiology"],
                    study={"type": kind, "sample_size": 500, "evidence_level": level},
                    published_at=days_before(clock(), 1),
                )
                for sid, (level, kind) in STUDIES.items()
            ),
        )
        past = clock() - timedelta(days=3)
        ids = {
            email: add_subscriber(s, email, ["cardiology"], created_at=past).id
            for email in ("all@x.org", "strong@x.org", "rct@x.org", "two@x.org", "mix@x.org")
        }
        s.flush()
        for email, wanted in {
            "rct@x.org": RelevanceIn(study_types=["Randomised controlled trial"]),
            "two@x.org": RelevanceIn(max_items=2),
            "mix@x.org": RelevanceIn(min_evidence_level=3, study_types=["cohort study", "case series"]),
        }.items():
            row = s.get(Subscriber, ids[email])
            assert row is not None
            apply_relevance(row, wanted)

    # "strong" chooses in the preference centre: level 2 or stronger, and no safety alerts.
    url = f"/preferences/{services.tokens.make(Purpose.PREFERENCES, ids['strong@x.org'])}"
    page = web.get(url)
    assert page.status_code == 200 and 'name="min_evidence_level"' in page.text
    assert 'value="randomised controlled trial"' in page.text  # the study types summaries have
    form = {
        "specialties": ["cardiology"],
        "cadence": "daily",
        "timezone": "UTC",
        "edition": "clinician",
        "send_hour": "7",
        "send_weekday": "0",
        "min_evidence_level": "2",
        "max_items": "",
    }
    assert web.post(url, data=form).status_code == 200
    with session_scope(services.sessions) as s:
        strong = s.scalar(select(Subscriber).where(Subscriber.email == "strong@x.org"))
        assert strong is not None and strong.min_evidence_level == 2 and strong.safety_alerts is False
    assert web.post(url, data={**form, "min_evidence_level": "9"}).status_code == 400

    dispatch.send_due(services, clock())
    texts = {
        r.rcpt_tos[0]: r.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        for r in smtp_sink.received
    }

    def got(email: str) -> set[str]:
        return {sid for sid in STUDIES if _takeaway(sid) in texts[email]}

    assert got("all@x.org") == {"meta", "rct", "cohort", "series"}
    assert got("strong@x.org") == {"meta", "rct"}
    assert got("rct@x.org") == {"rct"}
    assert got("two@x.org") == {"meta", "rct"}  # the two strongest
    assert got("mix@x.org") == {"cohort"}
    assert "your filters: evidence level 2 or stronger" in texts["strong@x.org"]
    assert "randomised controlled trial only" in texts["rct@x.org"]
    assert "at most 2 per digest" in texts["two@x.org"]
    assert "your filters" not in texts["all@x.org"]
