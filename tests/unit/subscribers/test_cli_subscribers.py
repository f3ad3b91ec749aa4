"""`digest subscribers add|import`: validated email, specialties and IANA time zone; exit 2 on bad input."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from digest.db import make_engine, make_session_factory, session_scope
from digest.subscribers.models import Subscriber, SubscriberStatus


def _subscribers(url: str) -> list[Subscriber]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        rows = list(s.scalars(select(Subscriber).order_by(Subscriber.email)))
    engine.dispose()
    return rows


def test_add_confirmed_subscriber(cli, settings) -> None:
    result = cli(
        "subscribers",
        "add",
        "Ada@Example.org",
        "--specialty",
        "cardiology",
        "-s",
        "oncology",
        "--cadence",
        "weekly",
        "--tz",
        "Europe/Berlin",
    )
    assert result.exit_code == 0, result.output
    (row,) = _subscribers(settings.database_url)
    assert row.email == "ada@example.org" and row.status == SubscriberStatus.ACTIVE
    assert [s.slug for s in row.specialties] == ["cardiology", "oncology"]
    assert row.cadence == "weekly" and row.timezone == "Europe/Berlin" and row.confirmed_at is not None


def test_add_rejects_bad_input_and_writes_nothing(cli, settings) -> None:
    bad = [
        (["not-an-email", "-s", "cardiology"], "field 'email'"),
        (["a@example.org", "-s", "astrology"], "unknown specialty 'astrology'"),
        (["a@example.org", "-s", "cardiology", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    ]
    for args, message in bad:
        result = cli("subscribers", "add", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    assert _subscribers(settings.database_url) == []


def test_csv_import_all_or_nothing(cli, settings, tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(
        "email,name,specialties,cadence,timezone,edition\n"
        "ok@example.org,Ok One,cardiology;oncology,daily,America/New_York,clinician\n"
        "broken-address,Bad,cardiology,daily,UTC,clinician\n"
        "tz@example.org,Tz,cardiology,weekly,Nowhere/City,patient\n"
    )
    result = cli("subscribers", "import", str(path))
    assert result.exit_code == 2
    assert "record 3 field 'email'" in result.output
    assert "record 4 field 'timezone'" in result.output
    assert _subscribers(settings.database_url) == []

    result = cli("subscribers", "import", str(path), "--skip-invalid")
    assert result.exit_code == 0
    (row,) = _subscribers(settings.database_url)
    assert row.email == "ok@example.org" and row.timezone == "America/New_York"


def test_unsubscribed_address_is_not_reactivated_by_import(cli, settings) -> None:
    assert cli("subscribers", "add", "gone@example.org", "-s", "cardiology").exit_code == 0
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as s:
        s.scalar(select(Subscriber)).status = SubscriberStatus.UNSUBSCRIBED
    result = cli("subscribers", "add", "gone@example.org", "-s", "oncology")
    assert result.exit_code == 2 and "only they can subscribe again" in result.output
    with session_scope(make_session_factory(engine)) as s:
        assert s.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.status == "active")) == 0
    engine.dispose()
