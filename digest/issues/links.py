"""Tracked links: ``{base_url}/r/{token}`` redirects to a summary's URL and records the click.

A token is two itsdangerous signatures joined by ``~``: one over the delivery id (per recipient)
and one over the target URL (per variant). Only URLs that digest itself signed can be targets, so
``/r/`` is no open redirect; a forged, altered or spliced part fails verification. Splitting the
token keeps rendering once per variant: the URL part is rendered into the shared body, and the
recipient's part goes in through the personalisation markers (``click_base``).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.issues.models import Click
from digest.ledger.models import Delivery
from digest.subscribers.tokens import BadToken, IdSigner

SEPARATOR = "~"  # not in itsdangerous' URL-safe alphabet, and unreserved in URLs
ALLOWED_SCHEMES = ("http", "https")


class ClickLinks:
    def __init__(self, secret_key: str, old_keys: list[str] | None, base_url: str):
        keys = [*(old_keys or []), secret_key]
        self._delivery = URLSafeSerializer(keys, salt="digest.click.delivery")
        self._delivery_signer = IdSigner(self._delivery)  # once per message on the send path
        self._url = URLSafeSerializer(keys, salt="digest.click.url")
        self.base_url = base_url.rstrip("/")

    def click_base(self, delivery_id: int) -> str:
        """The per-recipient start of every tracked link in one message (ends with the separator)."""
        return f"{self.base_url}/r/{self._delivery_signer.dumps(delivery_id)}{SEPARATOR}"

    def sign_url(self, url: str) -> str:
        """The per-variant end of a tracked link; only http(s) URLs can be tracked."""
        if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
            raise ValueError(f"only http(s) links can be tracked, not {url!r}")
        return str(self._url.dumps(url))

    def read(self, token: str) -> tuple[int, str]:
        """The (delivery id, target URL) a token stands for; BadToken if any part is not ours."""
        delivery_part, sep, url_part = token.partition(SEPARATOR)
        if not sep:
            raise BadToken("click")
        try:
            delivery_id = self._delivery.loads(delivery_part)
            url = self._url.loads(url_part)
        except (BadData, UnicodeError, ValueError) as exc:
            raise BadToken("click") from exc
        if not isinstance(delivery_id, int) or isinstance(delivery_id, bool) or not isinstance(url, str):
            raise BadToken("click")
        if urlsplit(url).scheme.lower() not in ALLOWED_SCHEMES:
            raise BadToken("click")
        return delivery_id, url


def follow(session: Session, links: ClickLinks, token: str, now: datetime) -> str:
    """Verify a click token, record the click and return where to redirect (the ``/r/`` route's job).

    Raises BadToken for anything digest did not sign. A valid link whose delivery was since deleted
    still redirects, unrecorded.
    """
    delivery_id, url = links.read(token)
    if session.scalar(select(Delivery.id).where(Delivery.id == delivery_id)) is not None:
        session.add(Click(delivery_id=delivery_id, url=url, at=now))
        session.flush()
    return url
