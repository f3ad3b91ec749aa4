"""``InList`` and ``ArrayLiteral``: a list parameter matches exactly the rows whose value it holds,
whatever characters the values carry, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.dialects import postgresql

from digest.db import ArrayLiteral, InList, make_engine
from digest.subscribers.models import Suppression, SuppressionReason
from tests.conftest import PG_URL, require

NOW = datetime(2026, 11, 28, tzinfo=UTC)
AWKWARD = [
    'quote"inside@example.org',
    "back\\slash@example.org",
    "brace{and}comma,@example.org",
    "  spaces around  ",
    "NULL",
    "",
    "ünïcødé@exämple.org",
    '\\"both\\"',
]


@pytest.fixture
def engine(clean_db: str) -> Iterator[Engine]:
    engine = make_engine(clean_db)
    with engine.begin() as conn:
        conn.execute(
            Suppression.__table__.insert(),
            [
                {"value": v, "reason": SuppressionReason.OPERATOR, "detail": "", "created_at": NOW}
                for v in [*AWKWARD, "other@example.org"]
            ],
        )
    yield engine
    engine.dispose()


def test_a_string_list_matches_exactly_its_values(engine: Engine) -> None:
    query = select(Suppression.value).where(InList(Suppression.value, "values"))
    with engine.connect() as conn:
        found = set(conn.execute(query, {"values": AWKWARD}).scalars())
        assert found == set(AWKWARD)
        assert list(conn.execute(query, {"values": []}).scalars()) == []


def test_an_integer_list_matches_exactly_its_ids(engine: Engine) -> None:
    with engine.connect() as conn:
        ids = dict(conn.execute(select(Suppression.value, Suppression.id)).all())
        wanted = [ids["NULL"], ids['quote"inside@example.org']]
        query = select(Suppression.value).where(InList(Suppression.id, "ids"))
        assert set(conn.execute(query, {"ids": wanted}).scalars()) == {"NULL", 'quote"inside@example.org'}


# Array literals are PostgreSQL syntax (SQLite binds an expanding IN list): this one runs there only.
@pytest.mark.parametrize("database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True)
def test_an_array_literal_reads_back_as_the_same_list(engine: Engine) -> None:
    require(
        engine.dialect.name == "postgresql",
        "PostgreSQL (DIGEST_TEST_DATABASE_URL)",
        "set DIGEST_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    statement = text("SELECT CAST(:strings AS text[]), CAST(:ints AS integer[])").bindparams(
        bindparam("strings", type_=ArrayLiteral()), bindparam("ints", type_=ArrayLiteral())
    )
    with engine.connect() as conn:
        strings, ints = conn.execute(statement, {"strings": AWKWARD, "ints": [3, -1, 2**31 - 1]}).one()
    assert strings == AWKWARD
    assert ints == [3, -1, 2**31 - 1]


def test_an_array_literal_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="ints or strings"):
        ArrayLiteral().bind_processor(postgresql.dialect())([1.5])
