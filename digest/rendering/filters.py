"""The email templates' Jinja2 filters, in the reader's locale (``EmailRenderer`` registers ``filters_for``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from babel.dates import format_date
from markupsafe import Markup, escape

from digest.i18n import number, translations


def _thousands(value: object, locale: str) -> object:
    return number(value, locale) if isinstance(value, int) and not isinstance(value, bool) else value


def _sentence(value: str) -> str:
    """Upper-case the first letter only ("capitalize" would turn "RCT" into "Rct")."""
    return value[:1].upper() + value[1:]


def _same_places(values: Sequence[float | int | None], locale: str) -> list[str]:
    """An estimate and its CI bounds to the same number of decimals, with a true minus sign and the
    locale's decimal sign ("0.85", "0,85").

    Floats drop trailing zeros (0.10 arrives as 0.1), so "0.1 to 0.32" would misreport precision;
    the most precise of the three sets the places. None stays "" (no bound reported).
    """
    places = max((_places(v) for v in values if v is not None), default=0)
    return ["" if v is None else number(v, locale, places).replace("-", "\u2212") for v in values]


def _places(value: float | int) -> int:
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _month(value: str | None, locale: str) -> str:
    """ "2026-01" -> "Jan 2026" ("ene 2026"); other shapes pass through."""
    shaped = value and len(value) >= 7 and value[:4].isdigit() and value[4] == "-" and value[5:7].isdigit()
    if not value or not shaped or not 1 <= int(value[5:7]) <= 12:
        return value or ""
    return format_date(date(int(value[:4]), int(value[5:7]), 1), "MMM y", locale=locale).rstrip(".")


def _short_day(value: str, locale: str) -> str:
    """ "2026-12-05" -> "5 Dec" ("5 dic"); other shapes pass through."""
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    return format_date(day, "d MMM", locale=locale).rstrip(".")


def join_and(values: Sequence[str], locale: str) -> str:
    """ "a, b and c" in the locale's words."""
    values = list(values)
    if len(values) < 2:
        return values[0] if values else ""
    return translations(locale).gettext("%(items)s and %(last)s") % {
        "items": ", ".join(values[:-1]),
        "last": values[-1],
    }


def _plain(value: object) -> Markup:
    """A macro's output as HTML text. The macros (email/_macros.j2) serve the plain-text part too,
    so they do not escape what they put together, yet Jinja2 hands their output to an autoescaped
    template as markup: unescaped, a study type or specialty name with a "<" was HTML."""
    return escape(str(value))


def filters_for(locale: str) -> dict[str, Callable[..., Any]]:
    """The filters of an environment bound to ``locale`` (digest/i18n.py)."""
    return {
        "thousands": partial(_thousands, locale=locale),
        "month": partial(_month, locale=locale),
        "short_day": partial(_short_day, locale=locale),
        "join_and": partial(join_and, locale=locale),
        "sentence": _sentence,
        "same_places": partial(_same_places, locale=locale),
        "plain": _plain,
    }
