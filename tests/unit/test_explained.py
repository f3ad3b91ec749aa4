"""Errors with a translatable message (``digest.errors.Explained``): ``str(exc)`` is the English
text the CLI, the API and the logs have always shown; ``in_locale`` the same sentence translated."""

from __future__ import annotations

import pickle
from datetime import datetime

import pytest

from digest.editors.service import EditorError, validate_password
from digest.errors import Count, Explained, InputError, OneOf, Term
from digest.issues.service import CANNOT, IllegalTransition, InvalidIssue, IssueNotFound, local_to_utc
from digest.untrusted import InvisibleCharacter, refuse_invisible


def test_str_is_the_english_text() -> None:
    length = InvalidIssue(
        "the subject is %(length)s characters long; the limit is %(limit)s", length=Count(1464), limit=Count(300)
    )
    assert str(length) == "the subject is 1,464 characters long; the limit is 300"
    assert length.args == ("the subject is 1,464 characters long; the limit is 300",)
    assert str(IssueNotFound("there is no campaign issue %(id)s", id=1234)) == "there is no campaign issue 1234"
    move = IllegalTransition(
        CANNOT["cancel"], id=3, current=Term("sent"), allowed=OneOf(["draft", "paused", "scheduled", "sending"])
    )
    assert str(move) == (
        "cannot cancel issue 3: it is sent, and only a draft or paused or scheduled or sending issue can be"
    )
    with pytest.raises(EditorError) as short:
        validate_password("short")
    assert str(short.value) == "the password must have at least 12 characters"
    with pytest.raises(InvalidIssue) as zone:
        local_to_utc(datetime(2030, 1, 1, 9), "Mars/Olympus")
    assert str(zone.value) == "unknown time zone 'Mars/Olympus': use an IANA name such as Europe/Berlin"
    with pytest.raises(InvisibleCharacter) as invisible:
        refuse_invisible("a\u202eb", "the name")
    assert isinstance(invisible.value, ValueError)  # as pydantic's validators need it
    assert (
        str(invisible.value) == "the name contains the control or direction character U+202E at position 2: remove it"
    )


def test_in_locale_translates_the_message_and_its_words() -> None:
    length = InvalidIssue(
        "the subject is %(length)s characters long; the limit is %(limit)s", length=Count(12345), limit=Count(300)
    )
    assert length.in_locale("es") == "el asunto tiene 12.345 caracteres; el límite es 300"
    assert length.in_locale("en") == str(length)
    move = IllegalTransition(CANNOT["start"], id=3, current=Term("sent"), allowed=OneOf(["draft", "scheduled"]))
    assert "«enviado»" in move.in_locale("es") and "borrador o programado" in move.in_locale("es")
    assert "brouillon ou programmé" in move.in_locale("fr")
    invisible = InvisibleCharacter(
        "%(what)s contains the control or direction character %(character)s at position %(position)s: remove it",
        what=Term("the subject"),
        character="U+0007",
        position=4,
    )
    assert invisible.in_locale("fr").startswith("l'objet contient le caractère de contrôle")
    assert InvalidIssue.like(invisible).in_locale("es").startswith("el asunto contiene")


def test_a_message_from_elsewhere_is_shown_as_it_is_and_errors_pickle() -> None:
    plain = EditorError("100% not an msgid")
    assert str(plain) == plain.in_locale("es") == "100% not an msgid"
    again = pickle.loads(pickle.dumps(IssueNotFound("there is no campaign issue %(id)s", id=7)))
    assert isinstance(again, IssueNotFound) and str(again) == "there is no campaign issue 7"
    assert again.in_locale("es") == "no existe el número de campaña 7"


def test_an_input_error_keeps_its_english_and_translates_its_frame() -> None:
    plain = InputError(3, "email", "value is not a valid email", "people.csv")
    assert str(plain) == "people.csv: record 3 field 'email': value is not a valid email"
    assert plain.in_locale("es") == "people.csv: registro 3, campo «email»: value is not a valid email"
    duplicate = InputError.of(4, "email", Explained("duplicate address (also line %(line)s)", line=2), "people.csv")
    assert str(duplicate) == "people.csv: record 4 field 'email': duplicate address (also line 2)"
    assert duplicate.message == "duplicate address (also line 2)"
    assert (
        duplicate.in_locale("fr")
        == "people.csv: enregistrement 4, champ « email » : adresse en double (aussi à la ligne 2)"
    )
    assert str(InputError(0, "", "cannot read file: gone")) == "record 0: cannot read file: gone"
