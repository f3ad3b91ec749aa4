"""Translations of the emails and subscriber pages: gettext catalogues read with Babel, per locale.

English is the source language: the templates and the Python strings are written in it and need no
catalogue. Every other locale of ``LOCALES`` has ``digest/locales/<locale>/LC_MESSAGES/messages.po``
in the package, compiled in memory the first time it is used (no ``.mo`` build step, so the wheel
carries the ``.po`` files only). ``make messages`` extracts the strings (babel.cfg) and updates the
catalogues; tests/unit/test_catalogues.py fails when one is out of date or has a string untranslated.

Jinja2 environments get ``jinja2.ext.i18n`` bound to one locale (``install``), with the locale's
date and number formats as globals and filters: one environment per locale, so a template compiled
for one language never serves another. Python code marks a string with ``N_`` where it is defined
and translates it with ``translations(locale).gettext`` where it is shown.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from importlib.resources import files
from io import BytesIO

from babel.core import Locale
from babel.dates import format_date, format_datetime, get_day_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import Environment

from digest.config import DEFAULT_LOCALE, LOCALES
from digest.resources import PACKAGE

DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark ``message`` for extraction where it is defined; it is translated where it is shown."""
    return message


def catalogue_path(locale: str) -> str:
    """Where a locale's catalogue lives inside the package (relative to ``digest/``)."""
    return f"locales/{locale}/LC_MESSAGES/{DOMAIN}.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> NullTranslations:
    """The locale's translations (English, or an unknown locale: the source strings as they are).

    Fuzzy entries are left out, as gettext does: a string whose translation is unreviewed shows in
    English rather than in a guess.
    """
    if locale == DEFAULT_LOCALE or locale not in LOCALES:
        return NullTranslations()
    with (files(PACKAGE) / catalogue_path(locale)).open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def supported(value: str | None) -> str | None:
    """The locale of ``LOCALES`` that ``value`` names ("es", "ES", "es-MX", "es_MX"), or None."""
    language = re.split(r"[-_]", (value or "").strip(), maxsplit=1)[0].lower()
    return language if language in LOCALES else None


def negotiate(accept_language: str | None) -> str:
    """The best of ``LOCALES`` for an Accept-Language header (quality values honoured), else the default."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        locale = supported(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


@lru_cache(maxsize=1)
def language_names() -> dict[str, str]:
    """Each locale's name in its own language ("Español"), for a language picker."""
    names = {code: Locale.parse(code).get_display_name(code) or code for code in LOCALES}
    return {code: name[:1].upper() + name[1:] for code, name in names.items()}


def weekday_names(locale: str) -> tuple[str, ...]:
    """Monday to Sunday in the locale, as a sentence starts them ("lunes" -> "Lunes")."""
    names = get_day_names("wide", locale=locale)
    return tuple(names[i][:1].upper() + names[i][1:] for i in range(7))


def number(value: float | int, locale: str, places: int | None = None) -> str:
    """``value`` in the locale: a count with its digit grouping ("12,345", "12 345"), or with
    ``places`` fixed decimals and the locale's decimal sign, ungrouped ("0.85", "0,85")."""
    pattern = None if places is None else "0" + ("." + "0" * places if places else "")
    return format_decimal(value, format=pattern, locale=locale)


def moment(value: datetime, locale: str) -> str:
    """A date and time already in the reader's zone, in the locale's words: "2026-12-05 14:30 CET"
    in English (as the dashboard always wrote it), "5 de diciembre de 2026, 14:30 CET" in Spanish."""
    if locale == DEFAULT_LOCALE:
        return value.strftime("%Y-%m-%d %H:%M %Z")
    return f"{day(value, locale)}, {value:%H:%M %Z}".rstrip()


def short_moment(value: datetime, locale: str) -> str:
    """An hour of a chart's axis: "05 Dec 14:00", "5 dic 14:00"."""
    if locale == DEFAULT_LOCALE:
        return value.strftime("%d %b %H:%M")
    return format_datetime(value, "d MMM HH:mm", locale=locale)


def day(value: date | datetime, locale: str) -> str:
    """A calendar date in the locale's words: "5 December 2026", "5 de diciembre de 2026"."""
    return format_date(value, format="long", locale=locale) if locale != DEFAULT_LOCALE else f"{value:%d %B %Y}"


def install(env: Environment, locale: str) -> Environment:
    """Bind ``env`` to ``locale``: ``{% trans %}``, ``_()``, ``gettext`` and ``ngettext`` translate
    (new-style: autoescaped, ``%(name)s`` placeholders), whitespace inside ``{% trans %}`` is trimmed,
    and ``lang`` is the locale for ``<html lang>``."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = locale
    env.globals["locales"] = LOCALES
    env.globals["language_names"] = language_names()
    env.globals["weekday_names"] = weekday_names(locale)
    env.filters["day"] = lambda value: day(value, locale)
    env.filters["number"] = lambda value, places=None: number(value, locale, places)
    return env
