"""The editor's pages in the editor's language: ?lang= first, then Accept-Language, as the public pages.

Each page is checked for strings the editor sees in Spanish or French, for ``<html lang>``, and for
the absence of every English source string (of two words or more, without placeholders) whose
translation differs: a string left unmarked or untranslated would show in English.
"""

from __future__ import annotations

import html
import re
from importlib.resources import files

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.i18n import catalogue_path
from digest.wiring import Services
from tests.factories import add_campaign
from tests.unit.web.conftest import EditorAccount, log_in
from tests.unit.web.test_archive import _sent_campaign


def _english_left(locale: str, page: str) -> list[str]:
    """The catalogue's source strings with a different translation that appear verbatim in ``page``."""
    with (files("digest") / catalogue_path(locale)).open("rb") as handle:
        catalogue = read_po(handle, locale=locale)
    text = html.unescape(re.sub(r"<script.*?</script>|<style.*?</style>", "", page, flags=re.S))
    left = []
    for message in catalogue:
        if not message.id or isinstance(message.id, tuple) or "%" in message.id or "<" in message.id:
            continue
        if message.string == message.id or len(message.id.split()) < 2:
            continue
        if message.id in text:
            left.append(message.id)
    return left


PAGES = {
    "es": ("Acceso de editores", "Números", "Nuevo número", "Cifras del número"),
    "fr": ("Connexion des éditeurs", "Numéros", "Nouveau numéro", "Chiffres du numéro"),
}


@pytest.mark.parametrize(("locale", "how"), [("es", "header"), ("fr", "query")])
def test_editor_pages_in_the_editors_language(
    anonymous: TestClient, editor_account: EditorAccount, services: Services, locale: str, how: str
) -> None:
    headers = {"Accept-Language": f"{locale},en;q=0.5"} if how == "header" else {"Accept-Language": "en"}
    query = f"?lang={locale}" if how == "query" else ""
    login, issues, compose, figures = PAGES[locale]

    page = anonymous.get(f"/editor/login{query}", headers=headers)
    assert page.status_code == 200 and f'<html lang="{locale}">' in page.text
    assert page.headers["content-language"] == locale
    assert f"<h1>{login}</h1>" in page.text
    assert _english_left(locale, page.text) == []

    log_in(anonymous, editor_account.email, editor_account.password)
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, services.clock(), subject="Cardiology roundup")

    for path, title, words in (
        (f"/editor/issues{query}", issues, {"es": "Boletines automáticos", "fr": "Digests automatiques"}),
        (f"/editor/issues/new{query}", compose, {"es": "Guardar el borrador", "fr": "Enregistrer le brouillon"}),
        (
            f"/editor/issues/{issue_id}/figures{query}",
            f"{figures} n° {issue_id}" if locale == "fr" else f"{figures} n.º {issue_id}",
            {"es": "Mensajes enviados", "fr": "Messages envoyés"},
        ),
        (f"/editor/issues/{issue_id}{query}", None, {"es": "Vista previa", "fr": "Aperçu"}),
    ):
        page = anonymous.get(path, headers=headers)
        assert page.status_code == 200, path
        assert f'<html lang="{locale}">' in page.text, path
        if title:
            assert f"<h1>{title}</h1>" in page.text, path
        assert words[locale] in page.text, path
        assert _english_left(locale, page.text) == [], path

    # English stays the default: no ?lang= and an English browser.
    page = anonymous.get("/editor/issues", headers={"Accept-Language": "en"})
    assert '<html lang="en">' in page.text and "Automatic digests" in page.text


def test_archived_issue_in_spanish(web: TestClient, services: Services, smtp_sink: SMTPSink) -> None:
    issue_id = _sent_campaign(services)
    listing = web.get("/issues", headers={"Accept-Language": "es"})
    assert listing.status_code == 200 and '<html lang="es">' in listing.text and "Published picks" in listing.text
    assert _english_left("es", listing.text) == []
    # The archived issue itself is the email as its readers got it (here English readers): the
    # variant most recipients received, in their language, whatever the visitor asks for.
    page = web.get(f"/issues/{issue_id}?lang=es")
    assert page.status_code == 200 and '<html lang="en"' in page.text and "Archived trial" in page.text
