"""A Spanish reader end to end through a real SMTP server: the sign-up in Spanish, the confirmation
email, the confirmed page and the preference centre, then the digest, all in Spanish; an English
reader of the same run still gets English, and the summaries stay in the language they came in."""

from __future__ import annotations

import re
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_summaries, days_before, summary_record


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
    assert str(digest["Subject"]).startswith("Boletín de Cardiology, ")
    assert str(digest["Subject"]).endswith(": Un ensayo clave + 1 más")
    assert '<html lang="es"' in html and "Mensaje clave" in html and "Key takeaway" not in html
    assert "2 resúmenes nuevos de Cardiology." in text and "Darse de baja:" in text
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
