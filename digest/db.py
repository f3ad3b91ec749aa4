"""Database plumbing: the declarative base, engines, sessions and a UTC-preserving datetime type."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    String,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
)
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zone type; values are stored as naive UTC and come back aware, so that
    comparisons in Python and in SQL agree on both SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    """A CHECK constraint that keeps a string column inside an enum's values (named after the column)."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


class ArrayLiteral(UserDefinedType[list[Any]]):
    """A list of ints or strings bound as one string in PostgreSQL's array syntax (``{1,2}``,
    ``{"a","b \\"c\\""}``), for SQL that casts it to an array: ``CAST(:ids AS integer[])``.

    Why: psycopg dumps a list parameter element by element in Python (a regular-expression search
    per string to decide its quoting): 104 us for a chunk's 250 ids, 86 us for 50 Message-IDs, a few
    times per batch on the send path. Here each string is quoted whole and escaped by two
    replacements, so any value goes through unchanged.

    The parameter goes untyped (no ``::VARCHAR`` after it, psycopg sends a ``str`` as unknown), so
    PostgreSQL gives it the array type of the CAST around it, once. Typed ``varchar``, the CAST is a
    conversion of a value, and a generic plan that filters a scan by it evaluated it again for every
    row: 26 ms for a batch's suppression lookup on 2,000 entries, against 0.8 ms untyped."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TEXT"

    def bind_processor(self, dialect: Dialect) -> Callable[[list[Any] | None], str | None]:
        return _array_literal


def _array_literal(value: list[Any] | None) -> str | None:
    if value is None:
        return None
    return "{" + ",".join(map(_array_element, value)) + "}"


def _array_element(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"an array parameter holds ints or strings, not {type(value).__name__}")


class InList(ColumnElement[bool]):
    """``column IN`` the list passed as parameter ``name``: ``column = ANY(:name)`` on PostgreSQL, one
    array parameter whatever the list's length; an expanding ``IN (...)`` elsewhere.

    Why: psycopg caches its placeholder conversion only for queries of at most 50 parameters, and a
    statement is prepared server-side only when its text repeats; a chunk's 250 ids as 250
    parameters paid a full conversion (and a fresh parse) on every statement of the send path. The
    array goes as an ``ArrayLiteral``.
    """

    inherit_cache = True
    type = Boolean()
    # A list, as SQLAlchemy declares it (shared by the class, never mutated).
    _traverse_internals = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]

    def __init__(self, column: ColumnElement[Any] | QueryableAttribute[Any], name: str):
        self.column = column
        self.name = name


@compiles(InList)
def _in_expanding(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(InList, "postgresql")
def _in_array(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    array = cast(bindparam(element.name, type_=ArrayLiteral()), ARRAY(_unbounded(element.column.type)))
    return compiler.process(element.column == any_(array), **kw)


def _unbounded(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The array's element type: a string column's without its length. Cast to ``varchar(320)[]``,
    each element is coerced to the length, an expression PostgreSQL evaluates for every row a
    generic plan filters by it (6 ms against 0.7 ms on 2,000 rows); ``varchar`` compares the same."""
    return String() if isinstance(type_, String) else type_


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. ``Session.execute`` types every result as ``Result``,
    which has no ``rowcount``; a DML statement's result is a ``CursorResult``, which does."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"rowcount needs the result of an UPDATE or DELETE, not {type(result).__name__}")
    return int(result.rowcount or 0)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout so workers can share it."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, poolclass=NullPool, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from pysqlite, which would otherwise start transactions only
            # before DML and so break SAVEPOINTs (a RELEASE would commit). SQLite is for development
            # and demos: PostgreSQL is the production database (concurrent writers, row locks).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    # Overflow connections are closed when returned, so a pool smaller than the concurrent requests
    # or tasks would connect (a PostgreSQL backend start) on most checkouts: keep ``pool_size`` at
    # the concurrency the process runs with (DIGEST_DB_POOL_SIZE).
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
