"""Clinician and patient editions, end to end: summaries in, digests out through a real SMTP server."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ledger.carried import carried
from digest.ledger.models import Delivery, SelectionItem
from digest.subscribers.models import Subscriber
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

PLAIN = "In plain words, a blood thinner at a lower dose prevented clots as well and caused fewer bleeds."
TAKEAWAY = "Reduced-dose apixaban was non-inferior for recurrence (HR 1.02) and lowered bleeding (HR 0.75)."


def _received(sink: SMTPSink) -> dict[str, EmailMessage]:
    return {r.rcpt_tos[0]: r.message for r in sink.received}


def _html(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]


def _text(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def _lead(html: str) -> str:
    """The first item's lead box (from its h2 to the end of the box)."""
    first_item = html[html.index("<h2") :]
    return first_item[: first_item.index("</div>")]


def _seed(services: Services, clock: Clock) -> None:
    now = clock()
    past = now - timedelta(days=3)
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(
                id="heme-plain",
                title="Lower-dose apixaban after six months",
                specialties=["hematology"],
                key_takeaway=TAKEAWAY,
                patient_summary=PLAIN,
                published_at=days_before(now, 1),
                study={"type": "randomised controlled trial", "sample_size": 5000, "evidence_level": 2},  # ranks first
            ),
            summary_record(
                id="heme-clinical-only",
                specialties=["hematology"],
                patient_summary=None,
                published_at=days_before(now, 1),
            ),
            summary_record(
                id="cardio-clinical-only",
                specialties=["cardiology"],
                patient_summary=None,
                published_at=days_before(now, 1),
            ),
        )
        add_subscriber(s, "doctor@example.org", ["hematology"], name="Dee Doctor", created_at=past)
        add_subscriber(s, "patient@example.org", ["hematology"], name="Pat Patient", edition="patient", created_at=past)
        add_subscriber(s, "heart-patient@example.org", ["cardiology"], edition="patient", created_at=past)


def test_patient_digest_leads_with_plain_language_and_has_no_outcomes_table(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    dispatch.send_due(services, clock())
    got = _received(smtp_sink)

    patient = _html(got["patient@example.org"])
    lead = _lead(patient)
    assert "What this means for patients" in lead and PLAIN in lead
    assert "HR " not in lead and TAKEAWAY not in patient
    assert '<table class="outcomes"' not in patient and "95% CI" not in patient
    assert "talk it over with your care team" in patient
    assert "Hematology, your specialty" in patient
    assert _text(got["patient@example.org"]).count("care team") == 1  # once, under the overview

    doctor = _html(got["doctor@example.org"])
    lead = _lead(doctor)
    assert "Key takeaway" in lead and TAKEAWAY in lead
    assert '<table class="outcomes"' in doctor and "<caption" in doctor and '<th scope="col"' in doctor
    assert doctor.index(TAKEAWAY) < doctor.index('<table class="outcomes"')
    assert "Evidence levels:" in doctor
    assert "2 new summaries for Hematology." in doctor


def test_summaries_without_patient_section_are_left_out_of_patient_digests(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _seed(services, clock)
    run = dispatch.send_due(services, clock())
    got = _received(smtp_sink)

    # The cardiology patient's only new summary has no patient section: no email, no ledger row.
    assert set(got) == {"doctor@example.org", "patient@example.org"}
    assert run.plan.deliveries == 2
    # The hematology patient gets the one summary that has it; the clinician gets both.
    assert "1 new summary for Hematology." in _text(got["patient@example.org"])
    assert "2 new summaries for Hematology." in _text(got["doctor@example.org"])
    with session_scope(services.sessions) as s:
        patients = dict(
            s.execute(
                carried()
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .with_only_columns(Subscriber.email, SelectionItem.summary_id)
                .where(Subscriber.edition == "patient")
            ).all()
        )
    assert patients == {"patient@example.org": "heme-plain"}


def test_one_render_pass_per_distinct_variant(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    now = clock()
    past = now - timedelta(days=3)
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="c1", specialties=["cardiology"], published_at=days_before(now, 1)),
            summary_record(id="c2", specialties=["cardiology"], published_at=days_before(now, 2)),
            summary_record(id="h1", specialties=["hematology"], published_at=days_before(now, 1)),
        )
        for n in range(6):
            add_subscriber(s, f"cardio-doc{n}@example.org", ["cardiology"], created_at=past)
        for n in range(4):
            add_subscriber(s, f"cardio-pat{n}@example.org", ["cardiology"], edition="patient", created_at=past)
        for n in range(3):
            add_subscriber(s, f"both-doc{n}@example.org", ["cardiology", "hematology"], created_at=past)
    passes_before = services.renderer.passes
    dispatch.send_due(services, clock())

    assert len(smtp_sink.received) == 13
    with session_scope(services.sessions) as s:
        keys = s.execute(
            select(Subscriber.edition, Delivery.variant_key).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        ).all()
    variants = set(keys)
    # cardiology clinicians, cardiology patients, cardiology+hematology clinicians
    assert Counter(edition for edition, _ in variants) == {"clinician": 2, "patient": 1}
    assert services.renderer.passes - passes_before == len(variants) == 3
