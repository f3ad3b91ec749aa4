"""Tokens: bound to subscriber and purpose, never expiring (except confirmation), rotation-proof."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.subscribers.tokens import BadToken, Purpose, Tokens

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_round_trip_and_purpose_binding() -> None:
    tokens = Tokens("k1")
    token = tokens.make(Purpose.UNSUBSCRIBE, 42)
    assert tokens.read(Purpose.UNSUBSCRIBE, token) == 42
    with pytest.raises(BadToken):
        tokens.read(Purpose.PREFERENCES, token)  # an unsubscribe token opens no preference centre


@pytest.mark.parametrize("garbage", ["", "x", "42", "NDI.abc", "eyJhIjoxfQ.c2ln", "..", "%00", "a" * 500])
def test_forged_or_garbled_tokens_are_refused(garbage: str) -> None:
    with pytest.raises(BadToken):
        Tokens("k1").read(Purpose.UNSUBSCRIBE, garbage)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = Tokens("attacker").make(Purpose.UNSUBSCRIBE, 1)
    with pytest.raises(BadToken):
        Tokens("k1").read(Purpose.UNSUBSCRIBE, token)


def test_old_keys_verify_after_rotation_and_new_tokens_use_the_new_key() -> None:
    old = Tokens("k1")
    rotated = Tokens("k2", ["k1"])
    assert rotated.read(Purpose.UNSUBSCRIBE, old.make(Purpose.UNSUBSCRIBE, 7)) == 7
    assert rotated.read_mailbox(old.mailbox(7)) == 7
    new = rotated.make(Purpose.UNSUBSCRIBE, 7)
    with pytest.raises(BadToken):
        old.read(Purpose.UNSUBSCRIBE, new)


def test_mailbox_token_survives_case_changes_and_rejects_forgery() -> None:
    tokens = Tokens("k1")
    box = tokens.mailbox(99)
    assert box == box.lower()
    assert tokens.read_mailbox(box.upper()) == 99
    with pytest.raises(BadToken):
        tokens.read_mailbox(box.replace("99-", "98-"))


def test_confirmation_tokens_expire() -> None:
    tokens = Tokens("k1")
    token = tokens.make_confirm(5, NOW)
    assert tokens.read_confirm(token, NOW + timedelta(days=6), timedelta(days=7)) == (5, NOW)
    with pytest.raises(BadToken):
        tokens.read_confirm(token, NOW + timedelta(days=8), timedelta(days=7))
    with pytest.raises(BadToken):
        tokens.read_confirm(tokens.make(Purpose.UNSUBSCRIBE, 5), NOW, timedelta(days=7))
