"""Where summary records come from: ``.json`` (one object or a list) and ``.jsonl`` files.

A source yields raw records with their 1-based record number; it does not validate them.
Unreadable input (bad JSON, a record that is not an object) becomes an ``InputError`` here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import InputError


@dataclass
class RawRecords:
    source: str
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def read_records(path: Path) -> RawRecords:
    """Read a ``.json`` or ``.jsonl`` file into numbered raw records."""
    out = RawRecords(source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        out.errors.append(InputError(record=0, field="", message=f"cannot read file: {exc}", source=out.source))
        return out
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                _add(out, number, line)
        return out
    if path.suffix.lower() != ".json":
        out.errors.append(InputError(0, "", f"unsupported file type {path.suffix!r}: use .json or .jsonl", out.source))
        return out
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        out.errors.append(
            InputError(0, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", out.source)
        )
        return out
    items = data if isinstance(data, list) else [data]
    for number, item in enumerate(items, start=1):
        _append(out, number, item)
    return out


def _add(out: RawRecords, number: int, line: str) -> None:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        out.errors.append(InputError(number, "", f"invalid JSON at column {exc.colno}: {exc.msg}", out.source))
        return
    _append(out, number, item)


def _append(out: RawRecords, number: int, item: object) -> None:
    if isinstance(item, dict):
        out.records.append((number, item))
    else:
        out.errors.append(InputError(number, "", f"expected a JSON object, got {type(item).__name__}", out.source))
