"""build_variant: what a subscriber's variant holds, per edition."""

from __future__ import annotations

from digest.rendering.compose import build_variant
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
