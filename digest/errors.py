"""Errors that carry where the bad input was: record number and field, so users can fix it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class InputError:
    """One problem in one record of an input file."""

    record: int  # 1-based record (or line) number in the input
    field: str  # dotted path of the field, or "" for the whole record
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        field = f" field '{self.field}'" if self.field else ""
        return f"{where}record {self.record}{field}: {self.message}"


class InvalidInput(Exception):
    """Raised when input is rejected whole; carries every error found."""

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__(f"{len(errors)} invalid record(s)")


def from_validation_error(record: int, exc: ValidationError, source: str = "") -> list[InputError]:
    """Turn pydantic's errors into InputErrors with dotted field paths."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        out.append(InputError(record=record, field=field, message=message, source=source))
    return out
