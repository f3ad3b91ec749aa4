"""Which summaries each subscriber gets, and in what order: evidence level, then sample size, then
recency; an editor's pins first; patient subscribers only get summaries with a patient section."""

from __future__ import annotations

from datetime import timedelta

from digest.db import session_scope
from digest.selection.service import PlanOptions, plan_digests
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, carried_by_email, days_before, summary_record


def _study(level: int | None, n: int | None) -> dict[str, object]:
    return {"type": "randomised controlled trial", "sample_size": n, "evidence_level": level}


def _seed(services: Services, clock: Clock) -> None:
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="l2-small-new", study=_study(2, 300), published_at=days_before(now, 0.5)),
            summary_record(id="l2-small-old", study=_study(2, 300), published_at=days_before(now, 3)),
            summary_record(id="l2-big", study=_study(2, 9000), published_at=days_before(now, 4), patient_summary=None),
            summary_record(id="l1-meta", study=_study(1, 800), published_at=days_before(now, 5)),
            summary_record(id="no-level", study=_study(None, None), published_at=days_before(now, 0.1)),
            summary_record(id="l4", study=_study(4, 50_000), published_at=days_before(now, 1)),
        )
        past = now - timedelta(days=10)
        add_subscriber(s, "doc@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "pat@example.org", ["cardiology"], edition="patient", created_at=past)


def _carried(services: Services) -> dict[str, list[str]]:
    with session_scope(services.sessions) as s:
        return carried_by_email(s)


def test_ranked_by_evidence_level_then_sample_size_then_recency(services: Services, clock: Clock) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        plan_digests(s, clock(), PlanOptions())
    assert _carried(services)["doc@example.org"] == [
        "l1-meta",
        "l2-big",
        "l2-small-new",
        "l2-small-old",
        "l4",
        "no-level",
    ]


def test_patient_subscribers_only_get_summaries_with_a_patient_section(services: Services, clock: Clock) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        plan_digests(s, clock(), PlanOptions())
    assert _carried(services)["pat@example.org"] == ["l1-meta", "l2-small-new", "l2-small-old", "l4", "no-level"]


def test_pinned_summaries_come_first_in_the_given_order(services: Services, clock: Clock) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        plan_digests(s, clock(), PlanOptions(max_items=4, pinned=("no-level", "l2-big")))
    carried = _carried(services)
    assert carried["doc@example.org"] == ["no-level", "l2-big", "l1-meta", "l2-small-new"]
    # A pin never overrides eligibility: l2-big has no patient section.
    assert carried["pat@example.org"] == ["no-level", "l1-meta", "l2-small-new", "l2-small-old"]
