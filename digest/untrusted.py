"""Text from outside (feeds, JSON imports, the API, CSV subscriber lists, the editor's forms):
the characters nobody means to send are kept out where the text comes in.

Control characters (C0 but TAB, LF and CR; DEL; C1) and bidirectional overrides and isolates
(U+202A-E, U+2066-9: they make "txt.exe" of "exe.txt") have no business in a clinical summary, a
name or a subject line. Two rules, both naming the record and the field:

- ``strip_record``: summaries (a feed is a third party's, nobody at hand can fix it) keep their
  text, the characters are removed, and each change is reported as a warning;
- ``refuse_invisible``: what a person typed or an operator imports (subscriber names, issue
  subjects) is refused with a message that says which character where, to be fixed at the source.

Headers are made safe again where they are written (``digest.rendering.headers``), whatever got in.
"""

from __future__ import annotations

import re
from typing import Any

from digest.errors import InputError, Invalid
from digest.i18n import N_

INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _codepoints(found: list[str]) -> str:
    return ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(found))


class InvisibleCharacter(Invalid):
    """Text with a character nobody means to send; the message names it and where it is."""


def refuse_invisible(value: str, what: str) -> str:
    """``value`` unchanged, or ``InvisibleCharacter`` (a ``ValueError``) naming the first invisible
    character and where it is. ``what`` ("the subject") may be a ``digest.errors.Term`` to be
    translated with the message."""
    match = INVISIBLE.search(value)
    if match is not None:
        raise InvisibleCharacter(
            N_(
                "%(what)s contains the control or direction character %(character)s at position %(position)s: remove it"
            ),
            what=what,
            character=f"U+{ord(match.group()):04X}",
            position=match.start() + 1,
        )
    return value


def strip_record(raw: Any, record: int, source: str = "", path: str = "") -> tuple[Any, list[InputError]]:
    """``raw`` (a parsed JSON record) with invisible characters removed from every string in it, and
    one warning per field that changed (record number, dotted field path, the characters removed)."""
    if isinstance(raw, str):
        found = INVISIBLE.findall(raw)
        if not found:
            return raw, []
        note = f"removed {len(found)} control or direction character(s) ({_codepoints(found)})"
        return INVISIBLE.sub("", raw), [InputError(record, path, note, source)]
    notes: list[InputError] = []
    if isinstance(raw, dict):
        cleaned: dict[Any, Any] = {}
        for key, value in raw.items():
            cleaned[key], found = strip_record(value, record, source, f"{path}.{key}" if path else str(key))
            notes += found
        return cleaned, notes
    if isinstance(raw, list):
        items = []
        for index, value in enumerate(raw):
            item, found = strip_record(value, record, source, f"{path}.{index}")
            items.append(item)
            notes += found
        return items, notes
    return raw, notes
