"""Errors that carry where the bad input was: record number and field, so users can fix it.

``Explained`` is the base of the errors whose message a person reads on a translated page: the
message is an ``N_``-marked msgid with ``%(name)s`` placeholders and its parameters, kept apart, so
``str(exc)`` is the English text (the CLI, the API and the logs) and ``exc.in_locale(locale)`` the
same sentence in the page's language.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from babel.lists import format_list
from pydantic import ValidationError

from digest.config import DEFAULT_LOCALE
from digest.i18n import N_, number, translations


class Count(int):
    """A parameter that is a quantity (a length, a limit): written with the locale's digit grouping
    ("1,234", "1 234"). Numbers that name something (an issue id, a position) stay plain ints."""


class Term(str):
    """A parameter that is itself a marked word or phrase ("the subject", "draft"): translated too."""


class OneOf(tuple[str, ...]):
    """Alternatives ("draft or scheduled"), each translated, listed with the locale's "or"."""


class Foreign(str):
    """A parameter in another library's English words (email-validator's reason, pydantic's): as it
    is in English; elsewhere its translation if the catalogue has one (a sentence marked where it is
    expected), else ``instead``, a marked sentence that says less, in the reader's words."""

    instead: str

    def __new__(cls, text: str, instead: str) -> Foreign:
        made = super().__new__(cls, text)
        made.instead = instead
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return Foreign, (str(self), self.instead)


def _render(value: object, locale: str) -> object:
    if isinstance(value, Count):
        return number(int(value), locale)
    if isinstance(value, Explained):  # a reason within a reason ("invalid email address …: <why>")
        return value.in_locale(locale)
    gettext = translations(locale).gettext
    if isinstance(value, Foreign):
        if locale == DEFAULT_LOCALE:
            return str(value)
        translated = gettext(value)
        return translated if translated != value else gettext(value.instead)
    if isinstance(value, Term):
        return gettext(value)
    if isinstance(value, OneOf):
        if locale == DEFAULT_LOCALE:
            return " or ".join(value)
        return format_list([gettext(word) for word in value], style="or", locale=locale)
    return value


class Explained(Exception):
    """An error with a translatable message: ``message`` (a msgid) and ``params`` (its values).

    Raise it as ``InvalidIssue(N_("the %(field)s is empty"), field=Term(N_("subject")))``; a
    message from elsewhere (a library's) with no parameters is shown as it is.
    """

    def __init__(self, message: str, /, **params: Any) -> None:
        self.message = message
        self.params: Mapping[str, Any] = params
        super().__init__(self.in_locale(DEFAULT_LOCALE))

    @classmethod
    def like(cls, other: Explained) -> Self:
        """This kind of error with ``other``'s message (an error of a lower layer passed on)."""
        return cls(other.message, **other.params)

    def in_locale(self, locale: str) -> str:
        """The message in ``locale`` (the source English for the default or an unknown locale)."""
        text = translations(locale).gettext(self.message)
        if not self.params:
            return text
        return text % {name: _render(value, locale) for name, value in self.params.items()}

    def __str__(self) -> str:
        return self.in_locale(DEFAULT_LOCALE)

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.message, dict(self.params))


def _rebuild(cls: type[Explained], message: str, params: dict[str, Any]) -> Explained:
    return cls(message, **params)


class Invalid(Explained, ValueError):
    """A value a validator refuses: a ``ValueError`` (pydantic reports it as the field's error, and
    ``from_validation_error`` keeps it) whose message translates."""


def in_locale(exc: BaseException, locale: str) -> str:
    """What ``exc`` says in ``locale``: translated if it is ``Explained``, else ``str(exc)``."""
    return exc.in_locale(locale) if isinstance(exc, Explained) else str(exc)


@dataclass(frozen=True)
class InputError:
    """One problem in one record of an input file."""

    record: int  # 1-based record (or line) number in the input
    field: str  # dotted path of the field, or "" for the whole record
    message: str  # in English
    source: str = ""
    reason: Explained | None = dataclasses.field(default=None, compare=False, repr=False)  # the message, translatable

    @classmethod
    def of(cls, record: int, field: str, reason: BaseException, source: str = "") -> InputError:
        """The problem ``reason`` (an exception) explains; translatable if it is ``Explained``."""
        return cls(record, field, str(reason), source, reason if isinstance(reason, Explained) else None)

    def __str__(self) -> str:
        return self.in_locale(DEFAULT_LOCALE)

    def in_locale(self, locale: str) -> str:
        """Where and what, in ``locale`` (a message from elsewhere, pydantic's, stays as it is)."""
        where = f"{self.source}: " if self.source else ""
        message = self.reason.in_locale(locale) if self.reason is not None else self.message
        frame = (
            N_("record %(record)s field '%(field)s': %(message)s")
            if self.field
            else N_("record %(record)s: %(message)s")
        )
        text = translations(locale).gettext(frame) % {"record": self.record, "field": self.field, "message": message}
        return where + text


class InvalidInput(Exception):
    """Raised when input is rejected whole; carries every error found."""

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__(f"{len(errors)} invalid record(s)")


# pydantic's commonest messages in its own English words, marked so that they translate; any other
# shows as ``NOT_VALID`` in another language (and as pydantic wrote it in English).
PYDANTIC_SENTENCES = (
    N_("Field required"),
    N_("Extra inputs are not permitted"),
    N_("List should have at least 1 item after validation, not 0"),
    N_("Input should be a valid string"),
    N_("Input should be a valid list"),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid boolean, unable to interpret input"),
)
NOT_VALID = N_("This value is not valid.")
# Those with values in them, by pydantic's error type: the msgid (pydantic's words) and its parameters.
_PYDANTIC_PATTERNS: dict[str, tuple[str, Any]] = {
    "enum": (
        N_("Input should be %(expected)s"),
        lambda ctx: {"expected": OneOf(re.findall(r"'[^']*'", str(ctx.get("expected", ""))))},
    ),
    "literal_error": (
        N_("Input should be %(expected)s"),
        lambda ctx: {"expected": OneOf(re.findall(r"'[^']*'", str(ctx.get("expected", ""))))},
    ),
    "string_too_long": (
        N_("String should have at most %(max_length)s characters"),
        lambda ctx: {"max_length": Count(ctx["max_length"])},
    ),
    "greater_than_equal": (N_("Input should be greater than or equal to %(ge)s"), lambda ctx: {"ge": ctx["ge"]}),
    "less_than_equal": (N_("Input should be less than or equal to %(le)s"), lambda ctx: {"le": ctx["le"]}),
}


def pydantic_reason(err: Mapping[str, Any]) -> Explained:
    """One of pydantic's errors as a translatable reason whose English is pydantic's message."""
    message = str(err["msg"]).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("error"), Explained):
        return ctx["error"]
    pattern = _PYDANTIC_PATTERNS.get(str(err.get("type")))
    if pattern is not None:
        try:
            reason = Explained(pattern[0], **pattern[1](ctx))
        except (KeyError, TypeError, ValueError):
            pass
        else:
            if str(reason) == message:  # else pydantic words it otherwise ("'a', 'b' or 'c'", "1 character")
                return reason
    return Explained("%(message)s", message=Foreign(message, NOT_VALID))


def from_validation_error(record: int, exc: ValidationError, source: str = "") -> list[InputError]:
    """Turn pydantic's errors into InputErrors with dotted field paths (their reasons translatable)."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        out.append(InputError(record=record, field=field, message=message, source=source, reason=pydantic_reason(err)))
    return out
