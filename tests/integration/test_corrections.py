"""Corrections and retractions end to end through a real SMTP server: a summary sent to some
readers is changed upstream; exactly the readers of the earlier version are told, once each, in
their edition; a retraction goes out on its own in the same send cycle; a cosmetic edit sends nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest import dispatch
from digest.corrections.models import Correction, CorrectionStatus
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.service import record_events
from digest.ingest.models import Summary, SummaryVersion
from digest.subscribers.lifecycle import unsubscribe
from digest.subscribers.models import Subscriber
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

CLINICIANS = ["c1@example.org", "c2@example.org", "c3@example.org"]
PATIENTS = ["p1@example.org", "p2@example.org"]
LEAVER = "leaver@example.org"  # got the summary, unsubscribed before the correction


def _text(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def _html(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]


def _received(sink: SMTPSink) -> list[tuple[str, EmailMessage]]:
    return [(r.rcpt_tos[0], r.message) for r in sink.received]


def _record(**overrides: Any) -> dict[str, Any]:
    """The same record each time (its study and dates fixed), with ``overrides`` changed."""
    base = summary_record(
        id="apixaban-1",
        title="Reduced-dose apixaban for extended VTE treatment",
        key_takeaway="Reduced-dose apixaban lowered recurrence (HR 0.08) without more bleeding.",
        patient_summary="In plain words, a lower dose of a blood thinner prevented clots well.",
        specialties=["cardiology"],
        published_at="2026-11-26T12:00:00Z",  # the clock fixture's start, less a day
        source_url="https://example.org/summaries/apixaban-1",
        study={"type": "randomised controlled trial", "sample_size": 2482, "evidence_level": 2},
    )
    base.update(overrides)
    return base


def _sent_once(services: Services, smtp_sink: SMTPSink, clock: Clock, **overrides: Any) -> None:
    """The summary (``_record(**overrides)``) goes out in the daily digest to 3 clinicians, 2 patients
    and the leaver; a neurologist gets nothing (not their specialty) and a cardiologist who joins
    later never got it."""
    with session_scope(services.sessions) as s:
        add_summaries(s, _record(**overrides))
        past = clock() - timedelta(days=3)
        for email in [*CLINICIANS, LEAVER]:
            add_subscriber(s, email, ["cardiology"], created_at=past)
        for email in PATIENTS:
            add_subscriber(s, email, ["cardiology"], edition="patient", created_at=past)
        add_subscriber(s, "neuro@example.org", ["neurology"], created_at=past)
    dispatch.send_due(services, clock())
    assert sorted(r for r, _ in _received(smtp_sink)) == sorted(CLINICIANS + PATIENTS + [LEAVER])
    smtp_sink.clear()
    clock.advance(hours=2)
    with session_scope(services.sessions) as s:
        add_subscriber(s, "late@example.org", ["cardiology"], created_at=clock())
        leaver = s.scalar(select(Subscriber).where(Subscriber.email == LEAVER))
        assert leaver is not None
        unsubscribe(s, leaver.id, clock(), source="link")


def _import(services: Services, record: dict[str, Any]) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, record)


def test_correction_reaches_exactly_the_readers_of_the_earlier_version_once(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    _sent_once(services, smtp_sink, clock)
    corrected = "Reduced-dose apixaban lowered recurrence (HR 0.80) without more bleeding."
    note = "The hazard ratio for recurrence was mistyped as 0.08; it is 0.80."
    _import(services, _record(key_takeaway=corrected, status="corrected", correction_note=note))

    # Nothing goes before an editor approves.
    assert dispatch.send_due(services, clock()).corrections == []
    assert smtp_sink.received == []
    listed = cli("corrections", "list")
    assert listed.exit_code == 0
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    with session_scope(services.sessions) as s:
        correction = s.scalar(select(Correction))
        assert correction is not None and correction.status == CorrectionStatus.PENDING and correction.standalone
        correction_id = correction.id
    assert len(lines) == 1 and lines[0].split()[0] == str(correction_id)
    assert "3 clinician" in lines[0] and "2 patient" in lines[0]  # the leaver is no longer a reader to tell
    approved = cli("corrections", "approve", str(correction_id))
    assert approved.exit_code == 0, approved.stdout

    run = dispatch.send_due(services, clock())
    assert [c.readers for c in run.corrections] == [5]
    got = _received(smtp_sink)
    assert sorted(r for r, _ in got) == sorted(
        CLINICIANS + PATIENTS
    )  # one each; not the neurologist, late joiner or leaver
    for rcpt, msg in got:
        assert msg["Subject"] == "Correction: Reduced-dose apixaban for extended VTE treatment"
        assert msg["List-Unsubscribe"] and msg["Message-ID"]
        text = _text(msg)
        assert note in text and note in _html(msg)
        if rcpt in PATIENTS:
            assert "We got something wrong in a summary we sent you" in text
            assert "In plain words, a lower dose" in text and corrected not in text
        else:
            assert "has been corrected" in text and corrected in text and "HR 0.08" not in text

    # Run again (and again after a day): nobody is told twice.
    smtp_sink.clear()
    again = dispatch.send_due(services, clock())
    assert again.corrections == [] and smtp_sink.received == []
    assert cli("corrections", "list").stdout.strip() == ""


def test_retraction_goes_out_on_its_own_in_the_same_send_cycle(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    _sent_once(services, smtp_sink, clock)
    _import(services, _record(status="retracted", correction_note="The trial was retracted for data fabrication."))
    listed = cli("corrections", "list").stdout  # reviews what was imported: the retraction waits for approval
    with session_scope(services.sessions) as s:
        correction = s.scalar(select(Correction))
        assert correction is not None and correction.kind == "retraction" and correction.standalone
        correction_id = correction.id
    assert listed.startswith(f"{correction_id}\tretraction\tapixaban-1 v2\tstandalone")
    assert cli("corrections", "approve", str(correction_id)).exit_code == 0

    clock.advance(days=1)  # the next daily digests are due in the same cycle
    with session_scope(services.sessions) as s:
        add_summaries(
            s, summary_record(id="other-1", specialties=["cardiology"], published_at=days_before(clock(), 0.1))
        )
    run = dispatch.send_due(services, clock())  # what `digest send` and each beat tick run
    assert run.plan.deliveries > 0 and [c.readers for c in run.corrections] == [5]
    got = _received(smtp_sink)
    notices = [(r, m) for r, m in got if m["Subject"].startswith("Retraction:")]
    assert sorted(r for r, _ in notices) == sorted(CLINICIANS + PATIENTS)
    for rcpt, msg in notices:
        text = _text(msg)
        assert "The trial was retracted for data fabrication." in text
        assert ("has been withdrawn" if rcpt in PATIENTS else "please disregard it") in text
    digests = [m for _, m in got if not m["Subject"].startswith("Retraction:")]
    assert digests, "the digest of the same cycle went out too"
    for msg in digests:  # separately: the retracted summary is in no digest
        assert "apixaban" not in _text(msg).lower()


def test_cosmetic_edit_sends_nothing_and_keeps_a_version(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    _sent_once(services, smtp_sink, clock)
    _import(services, _record(summary="A randomised trial, with a typo fixed.\n\nMore detail."))
    run = dispatch.send_due(services, clock())
    assert run.corrections == [] and smtp_sink.received == []
    assert cli("corrections", "list").stdout.strip() == ""
    with session_scope(services.sessions) as s:
        assert s.scalar(select(Correction)) is None
        versions = s.scalars(select(SummaryVersion).order_by(SummaryVersion.version)).all()
        assert [(v.version, v.material, v.changed) for v in versions] == [(1, False, []), (2, False, ["summary"])]
        assert s.get(Summary, "apixaban-1").version == 2  # type: ignore[union-attr]


def test_lesser_change_is_folded_into_each_readers_next_digest_once(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    _sent_once(services, smtp_sink, clock)
    note = "The plain-language section overstated the benefit; it now says the effect was modest."
    _import(
        services,
        _record(
            patient_summary="In plain words, a lower dose helped a little.", correction_note=note, status="corrected"
        ),
    )
    assert "\tfolded\t" in cli("corrections", "list").stdout
    with session_scope(services.sessions) as s:
        correction = s.scalar(select(Correction))
        assert correction is not None and not correction.standalone
        correction_id = correction.id
    assert cli("corrections", "approve", str(correction_id)).exit_code == 0
    run = dispatch.send_due(services, clock())
    assert [(c.issue_id, c.readers) for c in run.corrections] == [(None, 5)]
    assert smtp_sink.received == []  # nothing on its own: it waits for their next digest

    clock.advance(days=1)
    _import(services, summary_record(id="next-1", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    dispatch.send_due(services, clock())
    got = dict(_received(smtp_sink))
    assert set(got) == set(CLINICIANS + PATIENTS + ["late@example.org"])
    for rcpt in CLINICIANS + PATIENTS:
        text = _text(got[rcpt])
        assert text.index("CORRECTION:") < text.index("new summar")  # a block at the top
        assert note in text and note in _html(got[rcpt])
        intro = "We corrected something" if rcpt in PATIENTS else "has been corrected"
        assert intro in text
    late = _text(got["late@example.org"])
    assert "CORRECTION:" not in late  # never got the earlier version: no block, only the item marked
    assert f"Corrected: {note}" in late

    smtp_sink.clear()
    clock.advance(days=1)
    _import(services, summary_record(id="next-2", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    dispatch.send_due(services, clock())
    assert len(smtp_sink.received) == 6
    assert all("CORRECTION:" not in _text(m) for _, m in _received(smtp_sink))  # shown once


def _pending_line(cli: Any) -> tuple[int, list[str]]:
    """The one line `digest corrections list` prints: (its id, its tab-separated fields)."""
    listed = cli("corrections", "list")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    fields = lines[0].split("\t")
    return int(fields[0]), fields


def _notices(smtp_sink: SMTPSink, prefix: str) -> dict[str, EmailMessage]:
    """Recipient -> the one message whose subject starts with ``prefix`` (asserting one each)."""
    got = [(r, m) for r, m in _received(smtp_sink) if m["Subject"].startswith(prefix)]
    assert len({r for r, _ in got}) == len(got), "someone got two"
    return dict(got)


def test_a_body_edit_flagged_material_is_a_correction_folded_into_the_next_digest(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    """``material_change: true`` on an edit the rule calls cosmetic (the body) makes it a correction:
    pending until approved, its readers counted, then a block in each reader's next digest."""
    _sent_once(services, smtp_sink, clock)
    note = "The body described the control arm wrongly; it received full-dose apixaban."
    _import(
        services,
        _record(summary="The control arm received full-dose apixaban.", material_change=True, correction_note=note),
    )
    correction_id, fields = _pending_line(cli)
    assert fields[1:4] == ["correction", "apixaban-1 v2", "folded"]
    assert fields[5] == "readers: 3 clinician, 2 patient" and fields[6] == f"note: {note}"
    with session_scope(services.sessions) as s:
        v2 = s.scalar(select(SummaryVersion).where(SummaryVersion.version == 2))
        assert v2 is not None and (v2.material, v2.severe, v2.changed) == (True, False, ["summary", "correction_note"])
    assert cli("corrections", "approve", str(correction_id)).exit_code == 0
    assert dispatch.send_due(services, clock()).corrections[0].readers == 5
    assert smtp_sink.received == []  # folded: nothing on its own

    clock.advance(days=1)
    _import(services, summary_record(id="next-1", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    dispatch.send_due(services, clock())
    got = dict(_received(smtp_sink))
    for rcpt in CLINICIANS + PATIENTS:
        text = _text(got[rcpt])
        assert "CORRECTION:" in text and note in text
    assert "CORRECTION:" not in _text(got["late@example.org"])


@pytest.mark.parametrize(
    ("change", "prefix"),
    [
        ({"key_takeaway": "Reduced-dose apixaban lowered recurrence (HR 0.80) without more bleeding."}, "Correction:"),
        ({"outcomes": [{"name": "Recurrent VTE", "measure": "HR", "value": 0.9}]}, "Correction:"),
        ({"safety": "Major bleeding was 2.1% on the reduced dose."}, "Correction:"),
        ({"status": "retracted"}, "Retraction:"),
    ],
    ids=["key takeaway", "outcomes", "safety", "retraction"],
)
def test_material_change_false_never_silences_a_severe_change(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any, change: dict[str, Any], prefix: str
) -> None:
    """A record flagged ``material_change: false`` that changes what clinicians act on (key takeaway,
    outcomes, safety) or retracts still opens a correction of its own, pending an editor's approval:
    a mislabelled upstream record must not keep a wrong hazard ratio from the readers who got it."""
    _sent_once(services, smtp_sink, clock)
    note = "Flagged cosmetic upstream, but it changes what readers act on."
    _import(services, _record(**change, correction_note=note, material_change=False))
    assert dispatch.send_due(services, clock()).corrections == [] and smtp_sink.received == []
    correction_id, fields = _pending_line(cli)
    assert fields[3] == "standalone" and fields[5] == "readers: 3 clinician, 2 patient"
    assert cli("corrections", "approve", str(correction_id)).exit_code == 0
    dispatch.send_due(services, clock())
    got = _notices(smtp_sink, prefix)
    assert set(got) == set(CLINICIANS + PATIENTS) and len(smtp_sink.received) == 5
    assert all(note in _text(m) for m in got.values())


def test_material_change_false_makes_a_patient_section_edit_cosmetic(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    """The flag does lower a lesser change: a reworded patient section flagged ``false`` is kept as
    a version and tells nobody (the same edit unflagged is folded into the next digest)."""
    _sent_once(services, smtp_sink, clock)
    _import(
        services,
        _record(patient_summary="In plain words, a lower dose prevented clots.", material_change=False),
    )
    assert cli("corrections", "list").stdout.strip() == ""
    run = dispatch.send_due(services, clock())
    assert run.corrections == [] and smtp_sink.received == []
    clock.advance(days=1)
    _import(services, summary_record(id="next-1", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    dispatch.send_due(services, clock())
    assert len(smtp_sink.received) == 6 and all("CORRECTION:" not in _text(m) for _, m in _received(smtp_sink))
    with session_scope(services.sessions) as s:
        assert s.scalar(select(Correction)) is None
        v2 = s.scalar(select(SummaryVersion).where(SummaryVersion.version == 2))
        assert v2 is not None and (v2.material, v2.changed) == (False, ["patient_summary"])


@pytest.mark.parametrize("status", ["corrected", "retracted"])
def test_a_corrected_or_retracted_record_without_a_note_is_refused_naming_the_field(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any, tmp_path: Path, status: str
) -> None:
    _sent_once(services, smtp_sink, clock)
    path = tmp_path / "records.json"
    path.write_text(json.dumps([_record(status=status, key_takeaway="Changed, but nobody says why.")]))
    result = cli("import", str(path))
    assert result.exit_code != 0
    assert f"record 1 field 'correction_note': a {status} summary needs a correction_note" in result.output
    with session_scope(services.sessions) as s:
        summary = s.get(Summary, "apixaban-1")
        assert summary is not None and summary.version == 1 and summary.status == "published"
        assert len(s.scalars(select(SummaryVersion)).all()) == 1
    assert cli("corrections", "list").stdout.strip() == ""
    assert dispatch.send_due(services, clock()).corrections == [] and smtp_sink.received == []


def test_approve_with_a_note_from_the_cli_sends_the_edited_note(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    _sent_once(services, smtp_sink, clock)
    proposed = "HR typo."
    _import(
        services,
        _record(
            key_takeaway="Reduced-dose apixaban lowered recurrence (HR 0.80) without more bleeding.",
            status="corrected",
            correction_note=proposed,
        ),
    )
    correction_id, fields = _pending_line(cli)
    assert fields[6] == f"note: {proposed}"
    edited = "We mistyped the hazard ratio for recurrence as 0.08. It is 0.80: a smaller benefit."
    approved = cli("corrections", "approve", str(correction_id), "--note", edited)
    assert approved.exit_code == 0, approved.output
    dispatch.send_due(services, clock())
    got = _notices(smtp_sink, "Correction:")
    assert set(got) == set(CLINICIANS + PATIENTS)
    for msg in got.values():
        assert edited in _text(msg) and edited in _html(msg)
        assert proposed not in _text(msg)
    with session_scope(services.sessions) as s:
        correction = s.get(Correction, correction_id)
        assert correction is not None and correction.note == edited and correction.approved_by == "cli"


def test_dismissed_from_the_cli_tells_nobody_and_leaves_the_list(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    _sent_once(services, smtp_sink, clock)
    _import(services, _record(safety="No new safety findings.", correction_note="Safety text reworded."))
    correction_id, _ = _pending_line(cli)
    dismissed = cli("corrections", "dismiss", str(correction_id))
    assert dismissed.exit_code == 0, dismissed.output
    assert f"dismissed correction {correction_id}" in dismissed.output
    assert cli("corrections", "list").stdout.strip() == ""
    assert dispatch.send_due(services, clock()).corrections == [] and smtp_sink.received == []
    again = cli("corrections", "approve", str(correction_id))
    assert again.exit_code == 1 and "is dismissed, not pending" in again.output
    clock.advance(days=1)
    _import(services, summary_record(id="next-1", specialties=["cardiology"], published_at=days_before(clock(), 0.1)))
    dispatch.send_due(services, clock())
    assert len(smtp_sink.received) == 6
    for _, msg in _received(smtp_sink):
        assert "CORRECTION:" not in _text(msg) and not msg["Subject"].startswith("Correction")
    with session_scope(services.sessions) as s:
        correction = s.get(Correction, correction_id)
        assert correction is not None and correction.status == CorrectionStatus.DISMISSED


def test_a_pending_correction_superseded_before_approval_sends_one_notice_about_the_newest(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    """v2 changes the takeaway and waits for approval; v3 changes the outcomes. The one pending
    correction moves on to v3 (its note, what changed in both): readers get one notice, with v3."""
    _sent_once(services, smtp_sink, clock)
    v2 = "Reduced-dose apixaban lowered recurrence (HR 0.80) without more bleeding."
    _import(services, _record(key_takeaway=v2, status="corrected", correction_note="The HR was mistyped."))
    first_id, fields = _pending_line(cli)
    assert fields[2] == "apixaban-1 v2"
    clock.advance(minutes=20)
    note3 = "The HR was mistyped, and the outcomes table listed the wrong follow-up."
    outcomes = [{"name": "Recurrent VTE at 12 months", "measure": "HR", "value": 0.8}]
    _import(services, _record(key_takeaway=v2, outcomes=outcomes, status="corrected", correction_note=note3))
    second_id, fields = _pending_line(cli)
    assert second_id == first_id and fields[2] == "apixaban-1 v3" and fields[3] == "standalone"
    assert "key takeaway" in fields[4] and "outcomes" in fields[4]
    assert fields[5] == "readers: 3 clinician, 2 patient" and fields[6] == f"note: {note3}"
    assert cli("corrections", "approve", str(first_id)).exit_code == 0
    run = dispatch.send_due(services, clock())
    assert [c.readers for c in run.corrections] == [5]
    got = _notices(smtp_sink, "Correction:")
    assert set(got) == set(CLINICIANS + PATIENTS) and len(smtp_sink.received) == 5
    for rcpt, msg in got.items():
        assert note3 in _text(msg)
        if rcpt in CLINICIANS:
            assert v2 in _text(msg) and "Recurrent VTE at 12 months" in _text(msg)
    smtp_sink.clear()
    assert dispatch.send_due(services, clock()).corrections == [] and smtp_sink.received == []
    assert cli("corrections", "list").stdout.strip() == ""
    with session_scope(services.sessions) as s:
        assert len(s.scalars(select(Correction)).all()) == 1


def test_a_reader_suppressed_since_gets_no_correction(
    services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    """c1's address hard-bounced and p1 complained after the summary reached them: the approval
    counts neither and the SMTP server gets the correction for the other three only."""
    _sent_once(services, smtp_sink, clock)
    with session_scope(services.sessions) as s:
        record_events(
            s,
            [
                DeliveryEvent("smtp", "hb-1", EventKind.HARD_BOUNCE, "c1@example.org", detail="550 5.1.1 no such user"),
                DeliveryEvent("smtp", "fbl-1", EventKind.COMPLAINT, "p1@example.org", detail="abuse report"),
            ],
            clock(),
        )
    _import(
        services,
        _record(
            key_takeaway="Reduced-dose apixaban lowered recurrence (HR 0.80) without more bleeding.",
            status="corrected",
            correction_note="The HR was mistyped.",
        ),
    )
    correction_id, fields = _pending_line(cli)
    assert fields[5] == "readers: 2 clinician, 1 patient"
    assert cli("corrections", "approve", str(correction_id)).exit_code == 0
    run = dispatch.send_due(services, clock())
    assert [c.readers for c in run.corrections] == [3]
    got = _notices(smtp_sink, "Correction:")
    assert set(got) == {"c2@example.org", "c3@example.org", "p2@example.org"} and len(smtp_sink.received) == 3
