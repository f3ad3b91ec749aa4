"""The provider-neutral pieces every webhook parser uses: times, ids for records without one, JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.events.delivery_event import InvalidPayload, fallback_event_id, load_json, parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T11:00:00+01:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),  # no zone: UTC
        (1795773600, datetime(2026, 11, 27, 10, tzinfo=UTC)),  # Unix seconds (SendGrid)
        (1795773600.5, datetime(2026, 11, 27, 10, 0, 0, 500000, tzinfo=UTC)),
        (True, None),  # a bool is no timestamp
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_fallback_event_id_is_the_same_for_the_same_record_in_any_key_order() -> None:
    first = fallback_event_id({"Email": "a@example.org", "RecordType": "SubscriptionChange", "n": 1})
    again = fallback_event_id({"n": 1, "RecordType": "SubscriptionChange", "Email": "a@example.org"})
    other = fallback_event_id({"n": 2, "RecordType": "SubscriptionChange", "Email": "a@example.org"})
    assert first == again != other and first.startswith("sha256:")


def test_load_json_says_what_is_wrong() -> None:
    assert load_json(b'[{"a": 1}]') == [{"a": 1}]
    with pytest.raises(InvalidPayload, match="not JSON"):
        load_json(b"{nope")
    with pytest.raises(InvalidPayload, match="not JSON"):
        load_json(b"\xff\xfe")
