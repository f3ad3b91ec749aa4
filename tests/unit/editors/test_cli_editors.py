"""`digest editors add`: hidden password prompt (twice) or --password-stdin."""

from __future__ import annotations

from sqlalchemy import select

from digest.db import make_engine, make_session_factory, session_scope
from digest.editors.models import Editor
from digest.editors.service import authenticate
from tests.conftest import Clock


def _editors(url: str) -> list[Editor]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        rows = list(s.scalars(select(Editor)))
    engine.dispose()
    return rows


def test_add_prompts_twice_and_stores_a_hash(cli, settings, clock: Clock) -> None:
    result = cli(
        "editors", "add", "Ed@Example.org", "--tz", "America/New_York", input="a long secret pw\na long secret pw\n"
    )
    assert result.exit_code == 0, result.output
    assert "a long secret pw" not in result.output  # hidden
    assert result.output.count("Password") >= 1 and "Repeat" in result.output
    (row,) = _editors(settings.database_url)
    assert row.email == "ed@example.org" and row.timezone == "America/New_York"
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as s:
        assert authenticate(s, "ed@example.org", "a long secret pw", clock()).id == row.id
    engine.dispose()


def test_add_from_stdin_and_errors(cli, settings) -> None:
    assert cli("editors", "add", "a@example.org", "--password-stdin", input="another long secret\n").exit_code == 0
    again = cli("editors", "add", "a@example.org", "--password-stdin", input="another long secret\n")
    assert again.exit_code == 2 and "already exists" in again.output
    short = cli("editors", "add", "b@example.org", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 12" in short.output
    assert [e.email for e in _editors(settings.database_url)] == ["a@example.org"]
