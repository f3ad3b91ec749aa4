"""The translation catalogues (digest/locales): complete, placeholders intact, and current with the
strings the code and templates mark (extracted here the way `make messages` does, from babel.cfg)."""

from __future__ import annotations

from configparser import RawConfigParser
from importlib.resources import files
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from digest.config import DEFAULT_LOCALE, LOCALES
from digest.i18n import catalogue_path, translations

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [locale for locale in LOCALES if locale != DEFAULT_LOCALE]


def _catalogue(locale: str) -> Catalog:
    with (files("digest") / catalogue_path(locale)).open("rb") as handle:
        return read_po(handle, locale=locale)


def _extracted() -> set[str | tuple[str, ...]]:
    """The msgids `make messages` would extract (babel.cfg's mapping, the N_ keyword added)."""
    config = RawConfigParser()
    config.read(ROOT / "babel.cfg")
    method_map = [(section.split(":", 1)[1].strip(), section.split(":", 1)[0]) for section in config.sections()]
    options_map = {pattern: dict(config.items(f"{method}: {pattern}")) for pattern, method in method_map}
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)
    return {message for _, _, message, _, _ in found}


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_string_is_translated_and_reviewed(locale: str) -> None:
    catalogue = _catalogue(locale)
    untranslated = [m.id for m in catalogue if m.id and (m.fuzzy or not _complete(m.string))]
    assert untranslated == []


def _complete(string: str | tuple[str, ...]) -> bool:
    return all(form.strip() for form in ((string,) if isinstance(string, str) else string))


@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_survive_translation(locale: str) -> None:
    """Babel's own checks: every %(name)s of the msgid in the msgstr, the plural forms all there."""
    problems = [(m.id, [str(e) for e in errors]) for m, errors in _catalogue(locale).check()]
    assert problems == []


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_catalogue_is_current_with_the_code(locale: str) -> None:
    """`make messages` leaves nothing to add or remove: each marked string has its entry."""
    catalogue = {m.id for m in _catalogue(locale) if m.id}
    extracted = _extracted()
    assert sorted(map(str, extracted - catalogue)) == [], "new strings: run make messages and translate them"
    assert sorted(map(str, catalogue - extracted)) == [], "strings no longer used: run make messages"


def test_the_catalogues_are_read_from_the_package() -> None:
    """Compiled in memory from the packaged .po (no .mo build step); English is the source text."""
    for locale in TRANSLATED:
        assert translations(locale).gettext("Unsubscribe") != "Unsubscribe"
    assert translations(DEFAULT_LOCALE).gettext("Unsubscribe") == "Unsubscribe"
