"""The summary record's validation: every error located by field, line breaks kept out of titles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from digest.errors import from_validation_error
from digest.ingest.schema import SummaryIn

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "example-summary.json"  # copy of shared/design
KNOWN = {"cardiology", "hematology", "oncology"}


def _validate(record: dict) -> SummaryIn:
    return SummaryIn.model_validate(record, context={"specialties": KNOWN})


def _fields(record: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as exc:
        _validate(record)
    return {e.field: e.message for e in from_validation_error(1, exc.value)}


def test_the_design_example_is_valid() -> None:
    item = _validate(json.loads(EXAMPLE.read_text()))
    assert item.id == "car-t-vs-salvage-chemo-rr-dlbcl-2026"
    cols = item.columns()
    assert cols["evidence_level"] == 1 and cols["sample_size"] == 2150 and cols["study_type"] == "meta-analysis"
    assert cols["published_at"].tzinfo is not None and len(cols["outcomes"]) == 3


def test_missing_required_fields_are_each_named() -> None:
    errors = _fields({"id": "x"})
    assert {"title", "key_takeaway", "specialties", "published_at"} <= set(errors)


def test_unknown_specialty_and_bad_values() -> None:
    record = json.loads(EXAMPLE.read_text())
    record["specialties"] = ["hematology", "astrology"]
    record["study"]["evidence_level"] = 7
    record["published_at"] = "2026-01-20T09:00:00"  # no time zone
    record["outcomes"][0]["ci_low"] = 0.60  # interval no longer contains 0.55
    errors = _fields(record)
    assert "astrology" in errors["specialties"]
    assert "study.evidence_level" in errors
    assert "time zone" in errors["published_at"]
    assert "does not contain" in errors["outcomes.0"]


def test_unknown_fields_are_rejected_not_dropped() -> None:
    record = json.loads(EXAMPLE.read_text())
    record["key_takeway"] = "typo"
    assert "key_takeway" in _fields(record)


def test_line_breaks_in_a_title_are_collapsed() -> None:
    record = json.loads(EXAMPLE.read_text())
    record["title"] = "Line one\r\nBcc: victim@example.org"
    assert _validate(record).title == "Line one Bcc: victim@example.org"


def test_a_title_of_1000_characters_is_refused_with_the_field_and_the_limit() -> None:
    record = json.loads(EXAMPLE.read_text())
    record["title"] = "=?utf-8?q?" + "A" * 990 + "?="  # a hostile encoded word, far past any subject line
    errors = _fields(record)
    assert set(errors) == {"title"}
    assert "500" in errors["title"]
