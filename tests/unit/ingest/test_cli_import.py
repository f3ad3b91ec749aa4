"""`digest import`: all or nothing, every error with record number and field, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from digest.db import make_engine, make_session_factory, session_scope
from digest.ingest.models import Summary
from tests.factories import summary_record


def _count(url: str) -> int:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        n = s.scalar(select(func.count()).select_from(Summary)) or 0
    engine.dispose()
    return n


def _write(path: Path, records: list[dict], jsonl: bool = False) -> Path:
    if jsonl:
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    else:
        path.write_text(json.dumps(records))
    return path


def test_import_json_then_reimport_updates(cli, settings, tmp_path: Path) -> None:
    records = [summary_record(id="a"), summary_record(id="b")]
    result = cli("import", str(_write(tmp_path / "s.json", records)))
    assert result.exit_code == 0, result.output
    assert "2 new" in result.output
    records[0]["title"] = "A new title"
    result = cli("import", str(_write(tmp_path / "s.json", records)))
    assert "0 new, 1 updated, 1 unchanged" in result.output
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as s:
        assert s.get(Summary, "a").title == "A new title"
    engine.dispose()


def test_single_object_and_jsonl(cli, settings, tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps(summary_record(id="solo")))
    assert cli("import", str(tmp_path / "one.json")).exit_code == 0
    path = _write(tmp_path / "s.jsonl", [summary_record(id="l1"), summary_record(id="l2")], jsonl=True)
    assert cli("import", str(path)).exit_code == 0
    assert _count(settings.database_url) == 3


def test_invalid_file_is_rejected_whole(cli, settings, tmp_path: Path) -> None:
    records = [
        summary_record(id="good"),
        summary_record(id="bad-specialty", specialties=["astrology"]),
        {k: v for k, v in summary_record(id="no-title").items() if k != "title"},
    ]
    result = cli("import", str(_write(tmp_path / "s.json", records)))
    assert result.exit_code == 2
    out = result.output
    assert "record 2 field 'specialties'" in out and "astrology" in out
    assert "record 3 field 'title'" in out
    assert "nothing was written" in out
    assert _count(settings.database_url) == 0

    result = cli("import", str(tmp_path / "s.json"), "--skip-invalid")
    assert result.exit_code == 0
    assert "imported 1 summaries" in result.output and "record 2" in result.output
    assert _count(settings.database_url) == 1


def test_broken_json_is_reported_with_its_place(cli, settings, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('[{"id": "x",}]')
    result = cli("import", str(tmp_path / "bad.json"))
    assert result.exit_code == 2 and "invalid JSON at line 1" in result.output
    (tmp_path / "bad.jsonl").write_text(json.dumps(summary_record(id="ok")) + "\nnot json\n")
    result = cli("import", str(tmp_path / "bad.jsonl"))
    assert result.exit_code == 2 and "record 2" in result.output
    assert _count(settings.database_url) == 0


def test_uninitialised_database_says_so(cli, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = cli("import", str(_write(tmp_path / "s.json", [summary_record()])))
    assert result.exit_code == 2 and "digest init" in result.output
