"""Property-based: ingestion never crashes on hostile input, and what it accepts is clean."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from digest.errors import from_validation_error
from digest.ingest.schema import SummaryIn
from digest.ingest.sources import read_records

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)
FIELDS = ["id", "title", "key_takeaway", "specialties", "published_at", "summary", "study", "outcomes", "source_url"]
records = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), json_values, max_size=10)
plausible = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
        "title": st.text(min_size=1, max_size=80),
        "key_takeaway": st.text(min_size=1, max_size=80),
        "specialties": st.lists(st.sampled_from(["cardiology", "CARDIOLOGY ", "oncology", "astrology"]), max_size=3),
        "published_at": st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    }
)


@given(st.binary(max_size=400), st.sampled_from([".json", ".jsonl", ".csv"]))
@settings(max_examples=100, deadline=None)
def test_any_bytes_in_a_file_become_located_errors(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        raw = read_records(path)  # never raises
    assert raw.records or raw.errors or not data.strip()
    for err in raw.errors:
        assert err.record >= 0 and err.message


@given(records | plausible)
@settings(max_examples=300, deadline=None)
def test_any_record_validates_clean_or_fails_with_a_field(raw: dict) -> None:
    try:
        item = SummaryIn.model_validate(raw, context={"specialties": {"cardiology", "oncology"}})
    except ValidationError as exc:
        errors = from_validation_error(7, exc)
        assert errors and all(e.record == 7 and e.message for e in errors)
        return
    assert "\n" not in item.title and "\r" not in item.title
    assert item.specialties and set(item.specialties) <= {"cardiology", "oncology"}
    assert item.published_at.tzinfo is not None
    json.dumps(item.columns(), default=str)
