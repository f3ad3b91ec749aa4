"""Why the service refused an editor's form, in the editor's language: the errors of
``digest.issues.service`` and ``digest.editors.service`` carry their message and its values apart
(``digest.errors.Explained``), so the page shows them translated while ``str(exc)`` stays English."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ledger.models import Issue
from digest.rendering.notices import localized_subject
from digest.wiring import Services
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record
from tests.unit.web.conftest import csrf_of
from tests.unit.web.test_accounts import _link

SPANISH = {"Accept-Language": "es"}


def _import(client: TestClient, rows: str, headers: dict[str, str]) -> str:
    """Post ``rows`` as a CSV import from the subscribers page; the refusal page's text."""
    token = csrf_of(client.get("/editor/subscribers", headers=headers).text)
    refused = client.post(
        "/editor/subscribers/import",
        headers=headers,
        data={"csrf_token": token},
        files={"file": ("people.csv", rows, "text/csv")},
    )
    assert refused.status_code == 400
    return html.unescape(refused.text)


def _compose(client: TestClient, subject: str, headers: dict[str, str]) -> str:
    new = client.get("/editor/issues/new", headers=headers)
    response = client.post(
        "/editor/issues",
        headers=headers,
        data={"csrf_token": csrf_of(new.text), "subject": subject, "audience": "all"},
    )
    assert response.status_code == 400, response.text
    return html.unescape(response.text)


@pytest.mark.parametrize(
    ("subject", "spanish", "english"),
    [
        ("   ", "el asunto está vacío", "the subject is empty"),
        (
            "x" * 400,
            "el asunto tiene 400 caracteres; el límite es 300",
            "the subject is 400 characters long; the limit is 300",
        ),
    ],
)
def test_compose_errors_in_the_editors_language(
    editor_client: TestClient, subject: str, spanish: str, english: str
) -> None:
    page = _compose(editor_client, subject, SPANISH)
    assert spanish in page and english not in page
    page = _compose(editor_client, subject, {"Accept-Language": "en"})
    assert english in page and spanish not in page


def test_an_unknown_time_zone_in_the_editors_language(editor_client: TestClient) -> None:
    """The invitation form names the new editor's zone; a zone that is none is refused in Spanish."""
    spanish = "zona horaria desconocida 'Mars/Olympus': use un nombre IANA como Europe/Berlin"
    english = "unknown time zone 'Mars/Olympus': use an IANA name such as Europe/Berlin"
    for headers, shown, hidden in ((SPANISH, spanish, english), ({"Accept-Language": "en"}, english, spanish)):
        page = editor_client.get("/editor/editors", headers=headers)
        response = editor_client.post(
            "/editor/editors/invite",
            headers=headers,
            data={"email": "new@example.org", "timezone": "Mars/Olympus", "csrf_token": csrf_of(page.text)},
        )
        assert response.status_code == 400, response.text
        text = html.unescape(response.text)
        assert shown in text and hidden not in text


def test_a_send_time_in_the_past_in_the_editors_language(editor_client: TestClient, services: Services) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, services.clock())
    url = f"/editor/issues/{issue_id}"
    spanish = "2020-01-01 09:00 Europe/Berlin ya ha pasado"
    english = "2020-01-01 09:00 Europe/Berlin is in the past"
    for headers, shown, hidden in ((SPANISH, spanish, english), ({"Accept-Language": "en"}, english, spanish)):
        token = csrf_of(editor_client.get(url, headers=headers).text)
        response = editor_client.post(
            f"{url}/schedule", headers=headers, data={"csrf_token": token, "send_at": "2020-01-01T09:00"}
        )
        assert response.status_code in (400, 409), response.text
        text = html.unescape(response.text)
        assert shown in text and hidden not in text


def test_a_short_password_in_french(
    editor_client: TestClient, anonymous_second: TestClient, smtp_sink: SMTPSink
) -> None:
    page = editor_client.get("/editor/editors")
    editor_client.post(
        "/editor/editors/invite",
        data={"email": "new.editor@example.org", "timezone": "UTC", "csrf_token": csrf_of(page.text)},
    )
    path = _link(smtp_sink, "new.editor@example.org")
    french = {"Accept-Language": "fr"}
    form = anonymous_second.get(path, headers=french)
    short = anonymous_second.post(
        path,
        headers=french,
        data={"password": "short", "password_again": "short", "csrf_token": csrf_of(form.text)},
    )
    assert short.status_code == 400
    text = html.unescape(short.text)
    assert "Le mot de passe doit comporter au moins 12 caractères." in text
    assert "at least 12 characters" not in text


def test_import_errors_on_the_subscribers_page_in_spanish(editor_client: TestClient) -> None:
    bad = "email,specialties\nnot-an-address,cardiology\nnew@example.org,astrology\n"
    for headers, shown in (
        (
            SPANISH,
            (
                "people.csv: registro 2, campo «email»: dirección de correo electrónico no válida 'not-an-address'",
                "people.csv: registro 3, campo «specialties»: especialidad desconocida 'astrology'",
            ),
        ),
        (
            {"Accept-Language": "en"},
            (
                "people.csv: record 2 field 'email': invalid email address 'not-an-address'",
                "people.csv: record 3 field 'specialties': unknown specialty 'astrology'",
            ),
        ),
    ):
        text = _import(editor_client, bad, headers)
        for line in shown:
            assert line in text, line


BAD_ROWS = (
    "email,specialties,cadence\n"
    "not-an-address,cardiology,daily\n"
    "a b@example.org,cardiology,daily\n"
    "new@example.org,cardiology,hourly\n"
)


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        (
            "es",
            (
                "people.csv: registro 2, campo «email»: dirección de correo electrónico no válida 'not-an-address': "
                "Una dirección de correo electrónico debe llevar una @.",
                "people.csv: registro 3, campo «email»: dirección de correo electrónico no válida 'a b@example.org': "
                "La dirección de correo electrónico contiene caracteres no válidos antes de la @: SPACE.",
                "people.csv: registro 4, campo «cadence»: El valor debe ser 'daily' o 'weekly'",
            ),
        ),
        (
            "fr",
            (
                "Une adresse e-mail doit contenir un @.",
                "L\u2019adresse e-mail contient des caractères non valides avant le @ : SPACE.",
                "La valeur doit être 'daily' ou 'weekly'",
            ),
        ),
        (
            "en",
            (
                "people.csv: record 2 field 'email': invalid email address 'not-an-address': "
                "An email address must have an @-sign.",
                "people.csv: record 3 field 'email': invalid email address 'a b@example.org': "
                "The email address contains invalid characters before the @-sign: SPACE.",
                "people.csv: record 4 field 'cadence': Input should be 'daily' or 'weekly'",
            ),
        ),
    ],
)
def test_why_an_imported_row_is_refused_in_the_editors_language(
    editor_client: TestClient, language: str, shown: tuple[str, ...]
) -> None:
    """email-validator's reasons and pydantic's are translated too (their English kept as they word it)."""
    headers = {"Accept-Language": language}
    text = _import(editor_client, BAD_ROWS, headers)
    for line in shown:
        assert line in text, line
    if language != "en":
        for english in ("@-sign", "Input should"):
            assert english not in text


def test_the_subscribers_table_names_specialties_in_the_editors_language(
    editor_client: TestClient, services: Services
) -> None:
    with session_scope(services.sessions) as s:
        add_subscriber(s, "cardio@example.org", ["cardiology", "primary-care"])
    spanish = html.unescape(editor_client.get("/editor/subscribers", headers=SPANISH).text)
    assert ">Cardiología, Atención Primaria</td>" in spanish and "Primary Care" not in spanish
    english = html.unescape(editor_client.get("/editor/subscribers", headers={"Accept-Language": "en"}).text)
    assert ">Cardiology, Primary Care</td>" in english


def test_a_refused_test_send_in_the_editors_language(
    editor_client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An address that is none, and a relay that refuses the message: both said in Spanish (the
    relay's own answer is shown as it gave it)."""
    with session_scope(services.sessions) as s:
        add_subscriber(s, "cardio@example.org", ["cardiology"])
        record = summary_record(specialties=["cardiology"])
        add_summaries(s, record)
        issue_id = add_campaign(s, services.clock(), subject="Picks", pinned=[record["id"]])

    def send(to: str) -> str:
        page = editor_client.get(f"/editor/issues/{issue_id}", headers=SPANISH)
        response = editor_client.post(
            f"/editor/issues/{issue_id}/test-send",
            headers=SPANISH,
            data={"csrf_token": csrf_of(page.text), "to": to, "specialty": "cardiology"},
        )
        assert response.status_code == 400
        return html.unescape(response.text)

    assert (
        "dirección de correo electrónico no válida 'me@example': "
        "La parte que sigue a la @ no es válida: debe llevar un punto." in send("me@example")
    )
    refusal = [SimpleNamespace(accepted=False, error="550 5.1.1 mailbox unavailable")]
    monkeypatch.setattr(services.transport, "send", lambda messages: refusal)
    text = send("me@example.net")
    assert "no se aceptó el mensaje de prueba para me@example.net: 550 5.1.1 mailbox unavailable" in text
    assert "was not accepted" not in text


def test_notice_subjects_in_the_editors_language(editor_client: TestClient, services: Services) -> None:
    """A correction notice's or safety alert's subject is stored in English (it goes to readers of every
    language, each in theirs); the editor's list of notices shows it in the editor's language."""
    sent = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    with session_scope(services.sessions) as s:
        for kind, subject in (
            ("correction", "Correction: Statins in the elderly"),
            ("alert", "Safety alert: Valve recall"),
        ):
            s.add(Issue(kind=kind, status="sent", subject=subject, planned_at=sent, sent_at=sent))
    spanish = html.unescape(editor_client.get("/editor/corrections", headers=SPANISH).text)
    assert "Corrección: Statins in the elderly" in spanish and "Alerta de seguridad: Valve recall" in spanish
    assert "Correction: Statins" not in spanish
    english = html.unescape(editor_client.get("/editor/corrections", headers={"Accept-Language": "en"}).text)
    assert "Correction: Statins in the elderly" in english and "Safety alert: Valve recall" in english


def test_a_campaign_subject_is_shown_as_written() -> None:
    assert localized_subject("Correction: our own words", "campaign", "es") == "Correction: our own words"
    assert localized_subject("Correction: a title", "correction", "es") == "Corrección: a title"
    assert localized_subject("A note of our own", "alert", "es") == "A note of our own"
    assert localized_subject("Correction: x", "correction", "en") == "Correction: x"
