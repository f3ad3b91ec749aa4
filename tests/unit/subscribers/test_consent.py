"""The consent record (digest/subscribers/consent.py) for the ways in and out that are not the
public pages: an operator's ``digest subscribers add``, a CSV import, mail to the List-Unsubscribe
mailto address and a complaint each leave one consent event, with how it happened and the choices
or the source in its detail. (The pages' own events: tests/unit/test_rights.py; an editor's
unsubscribe in the dashboard: tests/unit/web/test_editor.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.service import record_events
from digest.rights import find_subscriber
from digest.subscribers.models import ConsentEvent, SubscriberStatus
from digest.wiring import Services
from tests.factories import add_subscriber


def consent_of(services: Services, email: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, method, detail) of each consent event of the address's subscriber, in order."""
    with session_scope(services.sessions) as s:
        row = find_subscriber(s, email)
        assert row is not None
        events = s.scalars(
            select(ConsentEvent).where(ConsentEvent.subscriber_id == row.id).order_by(ConsentEvent.id)
        ).all()
        return [(e.action, e.method, json.loads(e.detail or "{}")) for e in events]


def test_cli_add_and_csv_import_are_recorded(cli, services: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    added = cli("subscribers", "add", "ann@example.org", "--specialty", "cardiology", "--cadence", "weekly")
    assert added.exit_code == 0, added.output
    [(action, method, detail)] = consent_of(services, "ann@example.org")
    assert (action, method) == ("added", "operator")
    assert detail["specialties"] == ["cardiology"] and detail["cadence"] == "weekly" and detail["status"] == "active"

    people = tmp_path / "people.csv"
    people.write_text(
        "email,specialties,edition\nben@example.org,oncology,patient\nann@example.org,cardiology;oncology,clinician\n"
    )
    imported = cli("subscribers", "import", str(people))
    assert imported.exit_code == 0, imported.output
    [(action, method, detail)] = consent_of(services, "ben@example.org")
    assert (action, method) == ("added", "import")
    assert detail["specialties"] == ["oncology"] and detail["edition"] == "patient" and detail["status"] == "active"
    ann = consent_of(services, "ann@example.org")
    assert [(a, m) for a, m, _ in ann] == [("added", "operator"), ("preferences", "import")]
    assert ann[1][2]["specialties"] == ["cardiology", "oncology"]


def test_mailto_unsubscribe_and_complaint_are_recorded(web: TestClient, services: Services) -> None:
    with session_scope(services.sessions) as s:
        cat = add_subscriber(s, "cat@example.org", ["cardiology"]).id
        add_subscriber(s, "dan@example.org", ["oncology"])
    mailbox = f"unsubscribe+{services.tokens.mailbox(cat)}@{services.settings.from_domain}"
    answer = web.post(
        "/webhooks/sendgrid/inbound",
        files={
            "envelope": (None, json.dumps({"to": [mailbox], "from": "cat@example.org"})),
            "to": (None, mailbox),
            "subject": (None, "unsubscribe"),
        },
    )
    assert answer.status_code == 200 and answer.json() == {"unsubscribed": 1}
    with session_scope(services.sessions) as s:
        record_events(s, [DeliveryEvent("postmark", "c-1", EventKind.COMPLAINT, "dan@example.org")], services.clock())

    cat_events = consent_of(services, "cat@example.org")
    assert [(a, m) for a, m, _ in cat_events] == [("added", "operator"), ("unsubscribed", "email")]
    assert cat_events[1][2] == {"source": "mailto"}
    dan_events = consent_of(services, "dan@example.org")
    assert [(a, m) for a, m, _ in dan_events] == [("added", "operator"), ("unsubscribed", "provider")]
    assert dan_events[1][2] == {"source": "postmark:"}
    with session_scope(services.sessions) as s:
        for email in ("cat@example.org", "dan@example.org"):
            row = find_subscriber(s, email)
            assert row is not None and row.status == SubscriberStatus.UNSUBSCRIBED
