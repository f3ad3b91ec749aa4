"""Readers' data rights (``digest.rights``, the preference centre's buttons and the CLI):
an export holds exactly the reader's data; after erasure no text column of any table holds the
address, the address cannot be imported, added or signed up again, and the issue's figures are
unchanged. Consent is recorded for every opt-in and change."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import String, Text, func, or_, select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.service import record_events
from digest.issues.figures import issue_figures
from digest.issues.models import Click
from digest.ledger.models import Delivery
from digest.models import Base
from digest.rights import CHOICE_COLUMNS, erase_subscriber, export_subscriber, find_subscriber
from digest.subscribers.lifecycle import update_preferences
from digest.subscribers.models import ConsentEvent, SignupAttempt, Subscriber
from digest.subscribers.relevance import RelevanceIn, apply_relevance
from digest.subscribers.schema import PreferencesIn
from digest.subscribers.service import import_subscribers
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.factories import planned_issue

ALICE, BOB = "alice.smith@example.org", "bob.jones@example.org"
ALICE_RELEVANCE = {"safety_alerts": False, "min_evidence_level": 2, "study_types": ["meta-analysis"], "max_items": 5}


def _scenario(services: Services, smtp_sink: SMTPSink) -> int:
    """Alice and Bob get a digest, click in it, have sign-up attempts; Bob complains; Alice changes
    her choices (the patient edition in the evening, weekly, no safety alerts, relevance filters).
    Returns the issue id."""
    now = services.clock()
    ids = planned_issue(services, now, [(ALICE, "Alice Smith", ["cardiology"]), (BOB, "Bob Jones", ["oncology"])])
    services.delivery.deliver(ids)
    assert len(smtp_sink.messages) == 2
    with session_scope(services.sessions) as s:
        for d in s.scalars(select(Delivery).where(Delivery.id.in_(ids))):
            who = s.get(Subscriber, d.subscriber_id)
            assert who is not None
            s.add(Click(delivery_id=d.id, url=f"https://journal.example.org/{who.email.split('.')[0]}", at=now))
            s.add(SignupAttempt(email=who.email, client=f"198.51.100.{d.id % 200}", created_at=now))
        bob = find_subscriber(s, BOB)
        assert bob is not None
        bob_delivery = s.scalar(select(Delivery).where(Delivery.subscriber_id == bob.id))
        assert bob_delivery is not None and bob_delivery.provider_message_id
        record_events(
            s,
            [DeliveryEvent("postmark", "ev-1", EventKind.COMPLAINT, BOB, (bob_delivery.provider_message_id,))],
            now,
        )
        alice = find_subscriber(s, ALICE)
        assert alice is not None
        prefs = PreferencesIn.model_validate(
            {"specialties": ["cardiology", "oncology"], "cadence": "weekly", "edition": "patient", "send_hour": 18},
            context={"specialties": {"cardiology", "oncology"}},
        )
        apply_relevance(alice, RelevanceIn.model_validate(ALICE_RELEVANCE))
        update_preferences(s, alice, prefs, paused=False, now=now, ip="203.0.113.7")
        return bob_delivery.issue_id


def _export(services: Services, email: str) -> dict[str, Any]:
    with session_scope(services.sessions) as s:
        row = find_subscriber(s, email)
        assert row is not None
        return export_subscriber(s, row, services.clock())


def test_the_export_holds_exactly_the_readers_data(services: Services, smtp_sink: SMTPSink) -> None:
    _scenario(services, smtp_sink)
    data = _export(services, ALICE)
    text = json.dumps(data)
    assert "bob" not in text.lower() and "198.51.100" in text  # her sign-up IP, nobody else's anything
    with session_scope(services.sessions) as s:
        alice = find_subscriber(s, ALICE)
        assert alice is not None
        mine = list(s.scalars(select(Delivery.id).where(Delivery.subscriber_id == alice.id)))
        consent = list(s.scalars(select(ConsentEvent.action).where(ConsentEvent.subscriber_id == alice.id)))
    assert data["profile"]["email"] == ALICE and data["profile"]["name"] == "Alice Smith"
    assert data["choices"] == {
        "specialties": ["cardiology", "oncology"],
        "cadence": "weekly",
        "timezone": "UTC",
        "edition": "patient",
        "send_hour": 18,
        "send_weekday": 0,
        "locale": "en",
        **ALICE_RELEVANCE,
    }
    assert [d["id"] for d in data["deliveries"]] == mine
    [delivery] = data["deliveries"]
    assert delivery["status"] == "sent" and [x["id"] for x in delivery["summaries"]] == ["cardio-a"]
    assert delivery["summaries"][0]["title"]
    assert [c["url"] for c in data["clicks"]] == ["https://journal.example.org/alice"]
    assert [c["action"] for c in data["consent_events"]] == consent == ["preferences"]
    assert data["consent_events"][0]["ip"] == "203.0.113.7"
    assert data["consent_events"][0]["choices"] == {**data["choices"], "status": "active"}
    assert len(data["signup_attempts"]) == 1 and data["provider_events"] == [] and data["suppressions"] == []

    bob = _export(services, BOB)
    assert "alice" not in json.dumps(bob).lower()
    assert [e["kind"] for e in bob["provider_events"]] == ["complaint"]
    # The complaint suppressed his address; the unsubscribe it caused kept that entry (and its reason).
    assert [(s["reason"], s["detail"]) for s in bob["suppressions"]] == [("complaint", "postmark:")]
    assert bob["choices"] == {
        "specialties": ["oncology"],
        "cadence": "daily",
        "timezone": "UTC",
        "edition": "clinician",
        "send_hour": 7,
        "send_weekday": 0,
        "locale": "en",
        "safety_alerts": True,
        "min_evidence_level": None,
        "study_types": [],
        "max_items": None,
    }


def _rows_holding(services: Services, needle: str) -> list[str]:
    """Every (table.column) whose value contains ``needle`` (case-insensitive), over every text
    column of every table, in SQL."""
    found = []
    with session_scope(services.sessions) as s:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if not columns:
                continue
            hits = s.execute(
                select(*columns).where(or_(*(func.lower(c).contains(needle.lower()) for c in columns)))
            ).all()
            found += [f"{table.name}: {tuple(row)}" for row in hits]
    return found


def test_after_erasure_no_row_holds_the_address_and_it_cannot_come_back(
    services: Services, smtp_sink: SMTPSink, web: TestClient, tmp_path: Path
) -> None:
    issue_id = _scenario(services, smtp_sink)
    with session_scope(services.sessions) as s:
        before = issue_figures(s, issue_id)
    assert before.complaints == 1 and before.clicks == 2
    assert _rows_holding(services, ALICE) and _rows_holding(services, BOB)

    with session_scope(services.sessions) as s:
        alice = find_subscriber(s, ALICE)
        assert alice is not None
        alice.locale, alice.timezone = "es", "Europe/Madrid"
        alice_id = alice.id
    for email in (ALICE, BOB):
        with session_scope(services.sessions) as s:
            row = find_subscriber(s, email)
            assert row is not None
            erase_subscriber(s, row, services.clock(), source="test")
    assert _rows_holding(services, ALICE) == [] and _rows_holding(services, BOB) == []
    with session_scope(services.sessions) as s:
        # The anonymised row keeps none of her choices: each is the default any new row gets.
        erased = s.get(Subscriber, alice_id)
        assert erased is not None and erased.erased_at is not None
        kept = {c: getattr(erased, c) for c in CHOICE_COLUMNS}
        assert kept == {
            "cadence": "daily",
            "timezone": "UTC",
            "send_hour": 7,
            "send_weekday": 0,
            "edition": "clinician",
            "locale": "en",
            "safety_alerts": True,
            "min_evidence_level": None,
            "study_types": None,
            "max_items": None,
        }
        assert erased.specialties == [] and erased.name == "" and erased.status == "unsubscribed"
    assert _rows_holding(services, "198.51.100.") == [] and _rows_holding(services, "203.0.113.7") == []
    assert _rows_holding(services, "Alice Smith") == []

    with session_scope(services.sessions) as s:
        after = issue_figures(s, issue_id)
    # The ledger's figures are untouched, except that Alice (still subscribed) has now left: an
    # erasure ends a subscription, and the issue's unsubscribes count her as Bob's complaint did.
    assert {**asdict(after), "unsubscribes": 0} == {**asdict(before), "unsubscribes": 0}
    assert (before.unsubscribes, after.unsubscribes) == (1, 2)
    assert after.recipients == after.sent + after.failed + after.cancelled + after.pending == 2

    csv = tmp_path / "again.csv"
    csv.write_text(f"email,specialties\n{ALICE.upper()},cardiology\nnew.reader@example.org,cardiology\n")
    with session_scope(services.sessions) as s:
        report = import_subscribers(s, csv, skip_invalid=True)
    assert report.created == 1 and [e.field for e in report.skipped] == ["email"]
    assert "suppress" in report.skipped[0].message

    sent_before = len(smtp_sink.messages)
    answer = web.post("/subscribe", data={"email": ALICE, "specialties": ["cardiology"]})
    assert answer.status_code == 200
    assert len(smtp_sink.messages) == sent_before  # no confirmation: the address is blocked
    with session_scope(services.sessions) as s:
        assert find_subscriber(s, ALICE) is None


def test_the_preference_centre_downloads_and_erases(services: Services, smtp_sink: SMTPSink, web: TestClient) -> None:
    _scenario(services, smtp_sink)
    with session_scope(services.sessions) as s:
        alice = find_subscriber(s, ALICE)
        assert alice is not None
        alice_id = alice.id
    token = services.tokens.make(Purpose.PREFERENCES, alice_id)
    prefs = web.get(f"/preferences/{token}")
    assert f'href="/preferences/{token}/export"' in prefs.text and f'href="/preferences/{token}/erase"' in prefs.text

    download = web.get(f"/preferences/{token}/export")
    assert download.status_code == 200 and download.headers["content-type"] == "application/json"
    assert "attachment" in download.headers["content-disposition"]
    assert download.json()["profile"]["email"] == ALICE and "bob" not in download.text.lower()

    confirm_page = web.get(f"/preferences/{token}/erase")
    assert confirm_page.status_code == 200 and ALICE in confirm_page.text and 'name="confirm"' in confirm_page.text
    unconfirmed = web.post(f"/preferences/{token}/erase", data={})
    assert unconfirmed.status_code == 400
    with session_scope(services.sessions) as s:
        assert find_subscriber(s, ALICE) is not None  # nothing changed

    done = web.post(f"/preferences/{token}/erase", data={"confirm": "yes"})
    assert done.status_code == 200 and "Your data is erased" in done.text
    assert _rows_holding(services, ALICE) == []
    assert web.get(f"/preferences/{token}/export").status_code == 404
    assert "erased" in web.get(f"/preferences/{token}/erase").text
    assert web.get("/preferences/forged/export").status_code == 400


def test_cli_export_and_erase(cli, services: Services, smtp_sink: SMTPSink) -> None:  # type: ignore[no-untyped-def]
    _scenario(services, smtp_sink)
    out = cli("subscribers", "export", ALICE)
    assert out.exit_code == 0
    assert json.loads(out.stdout)["profile"]["email"] == ALICE
    assert cli("subscribers", "export", "nobody@example.org").exit_code == 1
    erased = cli("subscribers", "erase", ALICE)  # no terminal: not asked
    assert erased.exit_code == 0 and "erased" in erased.stdout
    assert _rows_holding(services, ALICE) == []
    again = cli("subscribers", "add", ALICE, "--specialty", "cardiology")
    assert again.exit_code == 2 and "suppression list" in again.output


def test_consent_is_recorded_for_each_opt_in_and_change(
    services: Services, smtp_sink: SMTPSink, web: TestClient
) -> None:
    web.post("/subscribe", data={"email": "carol@example.org", "specialties": ["cardiology"]})
    [mail] = smtp_sink.messages
    body = mail.get_body(("plain",))
    assert body is not None
    link = next(w for w in body.get_content().split() if "/confirm/" in w)
    assert web.get(link[link.index("/confirm/") :]).status_code == 200
    with session_scope(services.sessions) as s:
        carol = find_subscriber(s, "carol@example.org")
        assert carol is not None
        carol_id = carol.id
    prefs = services.tokens.make(Purpose.PREFERENCES, carol_id)
    web.post(f"/preferences/{prefs}", data={"specialties": ["oncology"], "cadence": "weekly", "paused": "1"})
    unsubscribe = services.tokens.make(Purpose.UNSUBSCRIBE, carol_id)
    for _ in range(2):  # a repeated one-click changes nothing, and is not recorded twice
        web.post(f"/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"})
    with session_scope(services.sessions) as s:
        events = s.scalars(
            select(ConsentEvent).where(ConsentEvent.subscriber_id == carol_id).order_by(ConsentEvent.id)
        ).all()
        got = [(e.action, e.method, e.ip) for e in events]
        details = [json.loads(e.detail or "{}") for e in events]
    assert got == [
        ("signup", "form", "testclient"),
        ("confirmed", "form", "testclient"),
        ("preferences", "form", "testclient"),
        ("unsubscribed", "one-click", "testclient"),
    ]
    assert details[0]["specialties"] == ["cardiology"] and details[2]["specialties"] == ["oncology"]
    assert details[2]["status"] == "paused"
