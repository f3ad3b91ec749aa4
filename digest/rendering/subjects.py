"""Digest subjects that fit a phone's inbox line: list name, date, lead headline, "+ N more".

A phone shows the first 35-45 characters of a subject in the list and about 60-70 when the message
is open; subjects of 70-118 characters hid "+ 7 more" on every phone. The rule:

    "<list>, <date>: <lead headline> + N more"

- <list>: "<Specialty> digest" when the reader's items all serve one of their specialties,
  otherwise the list name (DIGEST_LIST_NAME);
- <date>: the issue's date, "5 Dec" (in the reader's locale: "5 dic");
- <lead headline>: the first item's heading (the plain-language title in the patient edition),
  cut at a word boundary with "…" so that everything before " + N more" is at most
  ``LEAD_MAX`` (60) characters; " + N more" adds at most 10, so a subject is at most 70.

Campaign subjects are the editor's own and are not rewritten. The words ("digest", "more") are
in the reader's language (``translations``: digest/i18n.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from babel.support import NullTranslations

LEAD_MAX = 60


def heading(item: Mapping[str, Any], edition: str) -> str:
    """An item's title for this edition: the plain-language one for patients when the record has it."""
    if edition == "patient" and item.get("patient_title"):
        return str(item["patient_title"])
    return str(item["title"])


def digest_subject(
    list_name: str,
    specialties: Sequence[str],
    date: str,
    headline: str,
    more: int,
    translations: NullTranslations | None = None,
) -> str:
    """The subject by the rule of the module docstring."""
    words = translations or NullTranslations()
    name = words.gettext("%(specialty)s digest") % {"specialty": specialties[0]} if len(specialties) == 1 else list_name
    prefix = f"{name}, {date}: " if date else f"{name}: "
    lead = prefix + shorten(headline, max(12, LEAD_MAX - len(prefix)))
    return lead + (" + " + words.ngettext("%(num)d more", "%(num)d more", more) % {"num": more} if more > 0 else "")


def shorten(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters, cut after a whole word with "…" when it is longer."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-\u2013\u2014") + "\u2026"
