"""Tracked links: the delivery part the send path signs is the token itsdangerous makes, so links
already in inboxes keep working, and a click on it reads back its delivery and target."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer

from digest.issues.links import SEPARATOR, ClickLinks
from digest.subscribers.tokens import BadToken

BASE = "https://digest.example.org"
links = ClickLinks("current-key", ["old-key"], BASE)


@given(st.integers(min_value=-(2**63), max_value=2**63))
def test_the_delivery_part_is_the_itsdangerous_token(delivery_id: int) -> None:
    serializer = URLSafeSerializer(["old-key", "current-key"], salt="digest.click.delivery")
    assert links.click_base(delivery_id) == f"{BASE}/r/{serializer.dumps(delivery_id)}{SEPARATOR}"


@given(st.integers(min_value=1, max_value=2**62))
def test_a_tracked_link_reads_back_its_delivery_and_target(delivery_id: int) -> None:
    url = "https://pubmed.ncbi.nlm.nih.gov/12345678/?from=digest"
    token = (links.click_base(delivery_id) + links.sign_url(url)).removeprefix(f"{BASE}/r/")
    assert links.read(token) == (delivery_id, url)


def test_a_delivery_part_signed_with_another_key_is_refused() -> None:
    other = ClickLinks("someone-elses-key", None, BASE)
    token = (other.click_base(7) + links.sign_url("https://example.org/")).removeprefix(f"{BASE}/r/")
    with pytest.raises(BadToken):
        links.read(token)
