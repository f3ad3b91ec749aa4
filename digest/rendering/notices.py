"""What correction notices and safety alerts (digest/corrections) say in words of their own: the
subjects and the default note, in English where they are stored (the issue's subject, the
correction's note, which the editor may rewrite) and in the reader's locale where they are sent.

A notice issue goes to readers of every locale, so what is stored is the English source string; the
send translates it per reader (``localize_issue``). The default note is recognised by its English
wording and said again in the reader's words; a note the editor wrote is sent as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from digest.config import DEFAULT_LOCALE
from digest.i18n import N_, translations
from digest.ingest.versions import FIELD_NAMES, RETRACTED, RETRACTED_WORDS, join_fields

CORRECTION_SUBJECT = N_("Correction: %(title)s")
RETRACTION_SUBJECT = N_("Retraction: %(title)s")
ALERT_SUBJECT = N_("Safety alert: %(title)s")
RETRACTED_NOTE = N_("The summary \u201c%(title)s\u201d has been retracted.")
CHANGED_NOTE = N_("The %(changed)s of \u201c%(title)s\u201d changed since we sent it to you.")


def subject(kind: str, title: str, *, retracted: bool = False, locale: str = DEFAULT_LOCALE) -> str:
    """A notice's subject: "Safety alert: …" (``kind`` "alert"), "Retraction: …" or "Correction: …"."""
    if kind == "alert":
        msgid = ALERT_SUBJECT
    else:
        msgid = RETRACTION_SUBJECT if retracted or kind == "retraction" else CORRECTION_SUBJECT
    return translations(locale).gettext(msgid) % {"title": title}


def default_note(title: str, fields: Sequence[str], retracted: bool, locale: str = DEFAULT_LOCALE) -> str:
    """What readers are told when the record gave no correction note: ``fields`` as
    ``Change.named_fields`` lists them."""
    gettext = translations(locale).gettext
    if retracted:
        return gettext(RETRACTED_NOTE) % {"title": title}
    return gettext(CHANGED_NOTE) % {"changed": join_fields(list(fields), locale), "title": title}


def _pattern(msgid: str) -> re.Pattern[str]:
    text = re.escape(msgid)
    text = text.replace(re.escape("%(title)s"), "(?P<title>.+)")
    return re.compile(text.replace(re.escape("%(changed)s"), "(?P<changed>.+?)"), re.DOTALL)


_RETRACTED_RE = _pattern(RETRACTED_NOTE)
_CHANGED_RE = _pattern(CHANGED_NOTE)
_FIELDS_BY_WORDS = {words: field for field, words in FIELD_NAMES.items()} | {RETRACTED_WORDS: RETRACTED}


def _fields(words: str) -> list[str] | None:
    """The fields an English "a, b and c" names, or None if one is not a field's name."""
    head, _, last = words.rpartition(" and ")
    names = [*head.split(", "), last] if head else [last]
    fields = [_FIELDS_BY_WORDS.get(n) for n in names]
    return None if None in fields else [f for f in fields if f is not None]


def localized_note(note: str, locale: str) -> str:
    """``note`` in ``locale`` if it is the default note (in English, as stored), else as written."""
    if locale == DEFAULT_LOCALE or not note:
        return note
    text = note.strip()
    if match := _RETRACTED_RE.fullmatch(text):
        return default_note(match["title"], [], True, locale)
    if (match := _CHANGED_RE.fullmatch(text)) and (fields := _fields(match["changed"])) is not None:
        return default_note(match["title"], fields, False, locale)
    return note


def localized_changes(words: str, locale: str) -> str:
    """What changed as a correction stores it, in English ("key takeaway and outcomes", several
    joined by "; "), in ``locale``; words that do not name fields are left as they are."""
    if locale == DEFAULT_LOCALE or not words:
        return words
    parts = []
    for part in words.split("; "):
        fields = _fields(part)
        parts.append(join_fields(fields, locale) if fields else part)
    return "; ".join(parts)


_SUBJECTS = {msgid: _pattern(msgid) for msgid in (CORRECTION_SUBJECT, RETRACTION_SUBJECT, ALERT_SUBJECT)}


def localized_subject(stored: str, kind: str, locale: str) -> str:
    """An issue's subject as stored, in ``locale`` when the issue is a notice (``kind`` correction or
    alert: its subject is stored in English, for readers of every locale) and the subject is the
    notice's own: what the editor's list of notices shows. Any other subject as written."""
    if locale == DEFAULT_LOCALE or kind not in ("correction", "alert"):
        return stored
    for msgid, pattern in _SUBJECTS.items():
        if match := pattern.fullmatch(stored):
            return translations(locale).gettext(msgid) % {"title": match["title"]}
    return stored


def localize_issue(issue: dict[str, Any], title: str, retracted: bool, locale: str) -> dict[str, Any]:
    """A notice's or digest's issue context in the reader's locale: a notice's subject (about the
    summary ``title``) and its note, and the default notes of folded corrections. English is left
    as stored."""
    if locale == DEFAULT_LOCALE:
        return issue
    notice = issue.get("notice")
    corrections = issue.get("corrections")
    if not notice and not corrections:
        return issue
    out = dict(issue)
    if notice:
        out["subject"] = subject(str(notice["kind"]), title, retracted=retracted, locale=locale)
        out["notice"] = {**notice, "note": localized_note(notice.get("note") or "", locale)}
    if corrections:
        out["corrections"] = [{**c, "note": localized_note(c.get("note") or "", locale)} for c in corrections]
    return out
