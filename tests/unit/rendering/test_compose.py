"""build_variant: what a subscriber's variant holds, per edition."""

from __future__ import annotations

from digest.config import Settings
from digest.rendering.compose import build_variant
from digest.rendering.headers import DotFree
from tests.conftest import Clock
from tests.factories import SAMPLE_ISSUE, sample_summaries


def test_a_summary_without_patient_section_is_left_out_of_the_patient_variant() -> None:
    with_patient, without = sample_summaries(1)[0], sample_summaries(100, with_patient_summary=False)
    lacking = next(s for s in without if not s.patient_summary)
    specialties = {x.slug: x.name for s in (with_patient, lacking) for x in s.specialties}
    patient = build_variant("patient", [with_patient, lacking], specialties, SAMPLE_ISSUE)
    clinician = build_variant("clinician", [with_patient, lacking], specialties, SAMPLE_ISSUE)
    assert [i["id"] for i in patient.items] == [with_patient.id]
    assert [i["id"] for i in clinician.items] == [with_patient.id, lacking.id]
    assert set(patient.specialties) == {x.name for x in with_patient.specialties}  # the overview names what is there


def test_raw_mime_only_for_transports_that_send_it(settings: Settings, clock: Clock) -> None:
    """One composer for every email; Postmark and SendGrid take fields, so no MIME is written or
    signed for them, while SMTP and the outbox get the bytes of the one MIME writer."""
    from datetime import UTC, datetime

    from digest.rendering.compiled import RenderedEmail
    from digest.wiring import build_services

    rendered = RenderedEmail(subject="Confirm", html="<p>Hi</p>", text="Hi")
    when = datetime(2026, 11, 27, 12, tzinfo=UTC)
    for transport, wants in (("smtp", True), ("outbox", True), ("postmark", False), ("sendgrid", False)):
        settings.transport, settings.api_token = transport, "token"
        services = build_services(settings, clock=clock)
        msg = services.composer.compose_transactional("a@example.org", "Ann", rendered, when)
        services.close()
        assert services.transport.wants_raw is wants
        assert bool(msg.raw) is wants, transport
        assert msg.subject == "Confirm" and msg.message_id.endswith("@news.example.org>")
        if wants:
            assert isinstance(msg.raw, DotFree) and b"Subject: Confirm\r\n" in msg.raw
