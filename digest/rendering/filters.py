"""The email templates' Jinja2 filters (``EmailRenderer`` registers ``FILTERS``)."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape


def _thousands(value: object) -> object:
    return f"{value:,}" if isinstance(value, int) else value


def _sentence(value: str) -> str:
    """Upper-case the first letter only ("capitalize" would turn "RCT" into "Rct")."""
    return value[:1].upper() + value[1:]


def _same_places(values: Sequence[float | int | None]) -> list[str]:
    """An estimate and its CI bounds to the same number of decimals, with a true minus sign.

    Floats drop trailing zeros (0.10 arrives as 0.1), so "0.1 to 0.32" would misreport precision;
    the most precise of the three sets the places. None stays "" (no bound reported).
    """
    places = max((_places(v) for v in values if v is not None), default=0)
    return ["" if v is None else f"{v:.{places}f}".replace("-", "\u2212") for v in values]


def _places(value: float | int) -> int:
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _month(value: str | None) -> str:
    """ "2026-01" -> "Jan 2026"; other shapes pass through."""
    if value and len(value) >= 7 and value[4] == "-" and value[5:7].isdigit() and 1 <= int(value[5:7]) <= 12:
        return f"{calendar.month_abbr[int(value[5:7])]} {value[:4]}"
    return value or ""


def _join_and(values: Sequence[str]) -> str:
    values = list(values)
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1] if values else ""


def _plain(value: object) -> Markup:
    """A macro's output as HTML text. The macros (email/_macros.j2) serve the plain-text part too,
    so they do not escape what they put together, yet Jinja2 hands their output to an autoescaped
    template as markup: unescaped, a study type or specialty name with a "<" was HTML."""
    return escape(str(value))


FILTERS: dict[str, Callable[..., Any]] = {
    "thousands": _thousands,
    "month": _month,
    "join_and": _join_and,
    "sentence": _sentence,
    "same_places": _same_places,
    "plain": _plain,
}
