"""A Spanish reader end to end through a real SMTP server: the sign-up in Spanish, the confirmation
email, the confirmed page and the preference centre, then the digest, all in Spanish; an English
reader of the same run still gets English, and the summaries stay in the language they came in."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest import dispatch
from digest.corrections.alerts import send_alert
from digest.corrections.review import review_versions
from digest.corrections.service import approve, pending_corrections
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.dispatch import send_issue
from digest.ingest.models import Summary
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record


def _plain(mail: EmailMessage) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())


def _html(mail: EmailMessage) -> str:
    return str(mail.get_body(preferencelist=("html",)).get_content())


def _digest_to(sink: SMTPSink, email: str) -> EmailMessage:
    [mail] = [r.message for r in sink.received if r.rcpt_tos == (email,) and r.message["List-Unsubscribe"]]
    return mail


def _sign_up(web: TestClient, services: Services, sink: SMTPSink, email: str, locale: str) -> str:
    """Sign up and follow the confirmation link; the confirmed page's HTML."""
    form = {"email": email, "specialties": ["cardiology"], "cadence": "daily", "timezone": "UTC", "locale": locale}
    assert web.post("/subscribe", data=form).status_code == 200
    [confirmation] = [m for m in sink.messages if m["To"] == email]
    base = services.settings.base_url
    [link] = set(re.findall(re.escape(base) + r"/confirm/[\w.\-]+", _plain(confirmation)))
    page = web.get(link.removeprefix(base))
    assert page.status_code == 200
    return page.text


def test_a_spanish_reader_gets_the_confirmation_pages_and_digest_in_spanish(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    signup = web.get("/", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in signup.text and "Correo electrónico" in signup.text
    assert '<option value="es" lang="es" selected>Español</option>' in signup.text

    confirmed = _sign_up(web, services, smtp_sink, "lectora@example.org", "es")
    [confirmation] = smtp_sink.messages
    assert confirmation["Subject"] == f"Confirme su suscripción a {services.settings.list_name}"
    assert "Confirme que quiere recibir" in _plain(confirmation)
    assert "Confirmar mi suscripción" in _html(confirmation) and '<html lang="es"' in _html(confirmation)
    assert "Todos los días a las 07:00" in _plain(confirmation)
    assert '<html lang="es">' in confirmed and "Gracias: su suscripción está confirmada." in confirmed

    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="en1", specialties=["cardiology"], published_at=days_before(clock(), 0.2)),
            summary_record(
                id="es1",
                title="Un ensayo clave",
                key_takeaway="El tratamiento A reduce el riesgo.",
                language="es",
                specialties=["cardiology"],
                published_at=days_before(clock(), 0.3),
            ),
        )
    clock.advance(days=1)
    dispatch.send_due(services, clock())
    digest = _digest_to(smtp_sink, "lectora@example.org")
    text, html = _plain(digest), _html(digest)
    # The Spanish summary leads (same evidence level, the reader's language) and stays as it came.
    # The specialty is a shipped one: its name is in the reader's language in the subject and body.
    assert str(digest["Subject"]).startswith("Boletín de Cardiología, ")
    assert str(digest["Subject"]).endswith(": Un ensayo clave + 1 más")
    assert '<html lang="es"' in html and "Mensaje clave" in html and "Key takeaway" not in html
    assert "2 resúmenes nuevos de Cardiología." in text and "Darse de baja:" in text
    assert "Cardiology" not in str(digest["Subject"]) + text + html
    assert "Takeaway" in text  # the English summary is not translated
    assert text.index("El tratamiento A reduce el riesgo.") < text.index("Takeaway")

    preferences = re.search(r"Preferencias: \S+(/preferences/\S+)", text).group(1)  # type: ignore[union-attr]
    page = web.get(preferences)
    assert '<html lang="es">' in page.text and "Sus preferencias" in page.text
    assert "Guardar preferencias" in page.text and "Save preferences" not in page.text


def test_the_reader_chooses_their_language_in_the_preference_centre(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    _sign_up(web, services, smtp_sink, "reader@example.org", "en")
    with session_scope(services.sessions) as s:
        row = s.scalars(select(Subscriber).where(Subscriber.email == "reader@example.org")).one()
        token = services.tokens.make(Purpose.PREFERENCES, row.id)
    form = {"specialties": ["cardiology"], "cadence": "daily", "timezone": "UTC", "send_hour": "7", "locale": "fr"}
    saved = web.post(f"/preferences/{token}", data=form)
    assert saved.status_code == 200 and '<html lang="fr">' in saved.text
    assert "Vos préférences sont enregistrées." in saved.text

    refused = web.post(f"/preferences/{token}", data={**form, "locale": "de"})
    assert refused.status_code == 400 and "Choisissez une langue dans la liste." in refused.text
    with session_scope(services.sessions) as s:
        assert s.scalars(select(Subscriber.locale).where(Subscriber.email == "reader@example.org")).one() == "fr"


def test_a_locale_set_by_the_api_the_cli_or_an_import_is_stored_and_used(
    web: TestClient,
    services: Services,
    smtp_sink: SMTPSink,
    cli,  # type: ignore[no-untyped-def]
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """Each way in besides the sign-up form takes a locale: the API's double opt-in sends the
    confirmation in Spanish; a reader added by ``digest subscribers add --locale es`` or by a CSV
    import with a ``locale`` column gets the preference centre in Spanish."""
    from digest.integrations.apikeys import create_key

    with session_scope(services.sessions) as s:
        _, key = create_key(s, ["subscribers:write", "subscribers:read"], "test", services.clock())
    auth = {"Authorization": f"Bearer {key}"}
    created = web.post(
        "/api/subscribers",
        json={"email": "api@example.org", "specialties": ["cardiology"], "locale": "es"},
        headers=auth,
    )
    assert created.status_code == 201 and created.json()["locale"] == "es" and created.json()["status"] == "pending"
    [confirmation] = [m for m in smtp_sink.messages if m["To"] == "api@example.org"]
    assert confirmation["Subject"] == f"Confirme su suscripción a {services.settings.list_name}"
    assert "Confirme que quiere recibir" in _plain(confirmation) and '<html lang="es"' in _html(confirmation)

    added = cli("subscribers", "add", "cli@example.org", "--specialty", "cardiology", "--locale", "es")
    assert added.exit_code == 0, added.output
    people = tmp_path / "people.csv"
    people.write_text("email,specialties,locale\ncsv@example.org,cardiology,es\nplain@example.org,cardiology,\n")
    imported = cli("subscribers", "import", str(people))
    assert imported.exit_code == 0, imported.output

    with session_scope(services.sessions) as s:
        stored = dict(s.execute(select(Subscriber.email, Subscriber.locale)).tuples().all())
        ids = dict(s.execute(select(Subscriber.email, Subscriber.id)).tuples().all())
    assert stored == {
        "api@example.org": "es",
        "cli@example.org": "es",
        "csv@example.org": "es",
        "plain@example.org": "en",
    }
    for email, lang in (("cli@example.org", "es"), ("csv@example.org", "es"), ("plain@example.org", "en")):
        page = web.get(f"/preferences/{services.tokens.make(Purpose.PREFERENCES, ids[email])}")
        assert page.status_code == 200 and f'<html lang="{lang}">' in page.text, email

    changed = web.patch(f"/api/subscribers/{ids['cli@example.org']}", json={"locale": "fr"}, headers=auth)
    assert changed.status_code == 200 and changed.json()["locale"] == "fr"
    page = web.get(f"/preferences/{services.tokens.make(Purpose.PREFERENCES, ids['cli@example.org'])}")
    assert '<html lang="fr">' in page.text


def _readers(services: Services, clock: Clock, **record: object) -> dict[str, object]:
    """A summary sent in the daily digest to a Spanish and an English cardiologist; the record."""
    base: dict[str, object] = summary_record(
        id="trial-1",
        title="Apixaban trial",
        key_takeaway="Apixaban lowered recurrence (HR 0.08).",
        specialties=["cardiology"],
        published_at=days_before(clock(), 0.2),
        study={"type": "randomised controlled trial", "sample_size": 12482, "evidence_level": 2},
    )
    base.update(record)
    with session_scope(services.sessions) as s:
        add_summaries(s, base)
        past = clock() - timedelta(days=3)
        add_subscriber(s, "lectora@example.org", ["cardiology"], created_at=past, locale="es")
        add_subscriber(s, "reader@example.org", ["cardiology"], created_at=past)
    dispatch.send_due(services, clock())
    return base


def _approve_all(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        review_versions(s, clock())
        for correction in pending_corrections(s):
            approve(s, correction.id, by="editor@example.org", now=clock())


def _to(sink: SMTPSink, email: str) -> list[EmailMessage]:
    return [r.message for r in sink.received if r.rcpt_tos == (email,)]


def test_corrections_retractions_and_alerts_reach_each_reader_in_their_language(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    record = _readers(services, clock)
    smtp_sink.clear()
    clock.advance(hours=2)
    # A material change with no note of the record's own: the default note, in each reader's words.
    with session_scope(services.sessions) as s:
        add_summaries(s, {**record, "key_takeaway": "Apixaban lowered recurrence (HR 0.80)."})
    _approve_all(services, clock)
    dispatch.send_due(services, clock())
    [spanish] = _to(smtp_sink, "lectora@example.org")
    [english] = _to(smtp_sink, "reader@example.org")
    assert spanish["Subject"] == "Corrección: Apixaban trial"
    note = "Desde que se lo enviamos, ha cambiado lo siguiente en «Apixaban trial»: mensaje clave."
    assert note in _plain(spanish) and note in _html(spanish)
    assert "changed since we sent it" not in _plain(spanish) + _html(spanish)
    assert '<html lang="es"' in _html(spanish) and 'aria-roledescription="correo electrónico"' in _html(spanish)
    assert english["Subject"] == "Correction: Apixaban trial"
    assert "The key takeaway of \u201cApixaban trial\u201d changed since we sent it to you." in _plain(english)

    smtp_sink.clear()
    clock.advance(hours=2)
    with session_scope(services.sessions) as s:
        add_summaries(s, {**record, "status": "retracted", "correction_note": "Data fabrication."})
    _approve_all(services, clock)
    dispatch.send_due(services, clock())
    [spanish] = _to(smtp_sink, "lectora@example.org")
    assert spanish["Subject"] == "Retractación: Apixaban trial"
    assert "Data fabrication." in _plain(spanish)  # the record's own note, as written
    assert _to(smtp_sink, "reader@example.org")[0]["Subject"] == "Retraction: Apixaban trial"


def test_a_safety_alert_is_in_the_readers_language(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        add_subscriber(s, "lectora@example.org", ["cardiology"], created_at=clock(), locale="fr")
        add_summaries(s, summary_record(id="alert-1", title="Drug X recall", specialties=["cardiology"]))
        summary = s.get(Summary, "alert-1")
        assert summary is not None
        send_alert(s, summary, "Stop drug X.", clock())
    dispatch.send_due(services, clock())
    [french] = _to(smtp_sink, "lectora@example.org")
    assert french["Subject"] == "Alerte de sécurité : Drug X recall"


def test_the_summary_and_web_version_pages_in_spanish(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    record = _readers(services, clock)
    [sent] = _to(smtp_sink, "lectora@example.org")
    with session_scope(services.sessions) as s:
        corrected = {"key_takeaway": "Apixaban lowered recurrence (HR 0.80).", "correction_note": "HR mistyped."}
        add_summaries(s, {**record, **corrected, "status": "corrected"})

    page = web.get("/summaries/trial-1", headers={"Accept-Language": "es"})
    assert page.status_code == 200 and '<html lang="es">' in page.text
    history = page.text[page.text.index('id="history"') :]
    assert "mensaje clave" in history and "(corregido)" in history and "key takeaway" not in history
    assert "(corrected)" not in history and "Cardiología" in page.text and "n = 12.482" in page.text

    # The web version of the Spanish reader's digest: the note about the change in her language.
    [link] = re.findall(r'href="([^"]*/web/[^"]+)"', _html(sent))
    web_page = web.get(urlsplit(link).path)
    assert "Un resumen de este correo, o sus preferencias, cambiaron" in web_page.text
    assert "changed after it was sent" not in web_page.text
    missing = web.get(f"/web/{services.tokens.make(Purpose.WEB_VERSION, 10**6)}", headers={"Accept-Language": "es"})
    assert missing.status_code == 404 and "Este correo no está disponible" in missing.text


def test_the_archived_issue_page_in_the_visitors_language(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="s-1", title="Archived trial", specialties=["cardiology"]))
        add_subscriber(s, "reader@example.org", ["cardiology"], created_at=clock())
        issue_id = add_campaign(s, clock(), subject="Published picks", pinned=["s-1"])
    send_issue(services, issue_id)
    page = web.get(f"/issues/{issue_id}", headers={"Accept-Language": "es"})
    # The email as its (English) readers got it; the note and links around it in Spanish.
    assert page.status_code == 200 and '<html lang="en"' in page.text and "Key takeaway" in page.text
    assert '<div lang="es">' in page.text
    assert "Esta es la versión web de lo que recibió su único destinatario." in page.text
    assert "Se envió a los lectores que eligieron Cardiología." in page.text
    assert "web version of what" not in page.text and "Published picks" in page.text
    english = web.get(f"/issues/{issue_id}")
    assert "This is the web version of what its one recipient received." in english.text
