"""Errors with a translatable message (``digest.errors.Explained``): ``str(exc)`` is the English
text the CLI, the API and the logs have always shown; ``in_locale`` the same sentence translated."""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from digest.editors.service import EditorError, validate_password
from digest.errors import Count, Explained, Foreign, InputError, Invalid, OneOf, Term, from_validation_error
from digest.issues.service import CANNOT, IllegalTransition, InvalidIssue, IssueNotFound, local_to_utc
from digest.subscribers.lifecycle import update_preferences
from digest.subscribers.models import Cadence, Subscriber, SubscriberStatus
from digest.subscribers.relevance import RelevanceIn
from digest.subscribers.schema import InvalidAddress, PreferencesIn, normalize_email
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


def _pydantic_errors(model: type[BaseModel], data: dict[str, object]) -> list[InputError]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return from_validation_error(2, caught.value, "people.csv")


def test_pydantics_reasons_keep_its_english_and_translate() -> None:
    class Row(BaseModel):
        model_config = ConfigDict(extra="forbid")
        cadence: Cadence
        name: Annotated[str, StringConstraints(max_length=5)] = ""
        size: Annotated[int, Field(ge=1)] = 1
        kinds: Annotated[list[str], Field(min_length=1)] = ["x"]
        when: datetime | None = None

    errors = _pydantic_errors(Row, {"cadence": "hourly", "name": "far too long", "size": 0, "kinds": [], "extra": 1})
    assert [str(e) for e in errors] == [
        "people.csv: record 2 field 'cadence': Input should be 'daily' or 'weekly'",
        "people.csv: record 2 field 'name': String should have at most 5 characters",
        "people.csv: record 2 field 'size': Input should be greater than or equal to 1",
        "people.csv: record 2 field 'kinds': List should have at least 1 item after validation, not 0",
        "people.csv: record 2 field 'extra': Extra inputs are not permitted",
    ]
    assert [e.in_locale("es").split(": ", 2)[-1] for e in errors] == [
        "El valor debe ser 'daily' o 'weekly'",
        "El texto debe tener como máximo 5 caracteres",
        "El valor debe ser mayor o igual que 1",
        "La lista debe tener al menos 1 elemento, no 0",
        "No se admiten datos adicionales",
    ]
    assert errors[0].in_locale("fr").endswith("La valeur doit être 'daily' ou 'weekly'")
    # A message this list does not know: pydantic's English, and a plain sentence elsewhere.
    (odd,) = _pydantic_errors(Row, {"cadence": "daily", "when": "yesterday-ish"})
    assert str(odd).startswith("people.csv: record 2 field 'when': Input should be a valid datetime")
    assert odd.in_locale("es") == "people.csv: registro 2, campo «when»: Este valor no es válido."
    assert pickle.loads(pickle.dumps(odd.reason)).in_locale("fr") == "Cette valeur n\u2019est pas valide."


def test_email_validators_reasons_keep_its_english_and_translate() -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalize_email("someone@@example")
    assert str(caught.value) == (
        "invalid email address 'someone@@example': The part after the @-sign contains invalid characters: '@'."
    )
    assert caught.value.in_locale("es") == (
        "dirección de correo electrónico no válida 'someone@@example': "
        "La parte que sigue a la @ contiene caracteres no válidos: '@'."
    )
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.in_locale("es") == caught.value.in_locale("es")
    # A reason the catalogue does not have: its English, or a plain sentence in the reader's language.
    rare = Foreign("The email address is too long (2 characters too many).", "This is not a valid email address.")
    reason = Explained("invalid email address %(address)s: %(reason)s", address="'x'", reason=rare)
    assert str(reason) == "invalid email address 'x': The email address is too long (2 characters too many)."
    assert reason.in_locale("fr") == "adresse e-mail non valide 'x' : Ce n\u2019est pas une adresse e-mail valide."


def test_the_lifecycles_and_relevances_refusals_translate() -> None:
    row = Subscriber(id=7, email="gone@example.org", status=SubscriberStatus.UNSUBSCRIBED, locale="es")
    prefs = PreferencesIn(specialties=["cardiology"])
    with pytest.raises(Invalid) as caught:
        update_preferences(None, row, prefs, paused=False, now=datetime(2026, 12, 5))  # type: ignore[arg-type]
    assert str(caught.value) == "subscriber 7 is unsubscribed; only active or paused subscribers have preferences"
    assert caught.value.in_locale("es").startswith("el suscriptor 7 está en estado «dado de baja»; solo")
    (refused,) = _pydantic_errors(RelevanceIn, {"study_types": ["cohort|trial"]})
    assert str(refused) == "people.csv: record 2 field 'study_types': a study type may not contain '|'"
    assert refused.in_locale("es").endswith("un tipo de estudio no puede contener '|'")
