"""Property-based: tokens round-trip, are bound to their purpose, and anything else is BadToken."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.subscribers.tokens import BadToken, Purpose, Tokens

tokens = Tokens("current-key", old_keys=["old-key"])
ids = st.integers(min_value=1, max_value=2**53)


@given(ids, st.sampled_from(list(Purpose)))
def test_round_trip_and_purpose_binding(subscriber_id: int, purpose: Purpose) -> None:
    token = tokens.make(purpose, subscriber_id)
    assert tokens.read(purpose, token) == subscriber_id
    for other in set(Purpose) - {purpose}:
        with pytest.raises(BadToken):
            tokens.read(other, token)


@given(st.text(max_size=80))
@settings(max_examples=300)
def test_garbage_is_always_bad_token(text: str) -> None:
    for purpose in Purpose:
        with pytest.raises(BadToken):
            tokens.read(purpose, text)
    with pytest.raises(BadToken):
        tokens.read_mailbox(text)


@given(ids, st.integers(min_value=0, max_value=60), st.characters(codec="ascii"))
def test_a_changed_character_never_yields_another_subscriber(subscriber_id: int, position: int, char: str) -> None:
    """Base64's unused low bits make a few edits decode to the same bytes; none may reach another id."""
    token = tokens.make(Purpose.UNSUBSCRIBE, subscriber_id)
    position %= len(token)
    forged = token[:position] + char + token[position + 1 :]
    try:
        assert tokens.read(Purpose.UNSUBSCRIBE, forged) == subscriber_id
    except BadToken:
        pass


@given(ids)
def test_old_keys_still_verify_after_rotation(subscriber_id: int) -> None:
    before = Tokens("old-key")
    assert tokens.read(Purpose.UNSUBSCRIBE, before.make(Purpose.UNSUBSCRIBE, subscriber_id)) == subscriber_id
    assert tokens.read_mailbox(before.mailbox(subscriber_id)) == subscriber_id
    assert tokens.read_mailbox(tokens.mailbox(subscriber_id).upper()) == subscriber_id  # case-insensitive
    with pytest.raises(BadToken):
        Tokens("someone-elses-key").read(Purpose.UNSUBSCRIBE, tokens.make(Purpose.UNSUBSCRIBE, subscriber_id))


@given(st.integers(min_value=-(2**63), max_value=2**63), st.sampled_from([Purpose.UNSUBSCRIBE, Purpose.PREFERENCES]))
def test_tokens_are_itsdangerous_tokens(subscriber_id: int, purpose: Purpose) -> None:
    """Links already in inboxes must keep working: the send path's fast signing makes the very
    token ``URLSafeSerializer.dumps`` makes."""
    from itsdangerous import URLSafeSerializer

    serializer = URLSafeSerializer(["old-key", "current-key"], salt=f"digest.{purpose.value}")
    assert tokens.make(purpose, subscriber_id) == serializer.dumps(subscriber_id)
