"""Signed tokens in links: bound to one subscriber and one purpose, verified against current and old keys.

Unsubscribe and preference tokens never expire (an email from years ago must still work); after a
key rotation the old keys in ``DIGEST_OLD_SECRET_KEYS`` keep verifying while new tokens use the new key.
Confirmation tokens carry the time they were issued: they expire, and one issued before an
unsubscribe cannot undo it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from itsdangerous import BadData, URLSafeSerializer


class Purpose(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CONFIRM = "confirm"


class BadToken(Exception):
    """The token is forged, garbled, or for another purpose."""


class Tokens:
    def __init__(self, secret_key: str, old_keys: list[str] | None = None):
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = [*(old_keys or []), secret_key]
        # Built once: the send path makes two tokens per message, and building the serializer and
        # its signer was two thirds of the cost of one (both are stateless once built).
        self._serializers = {p: URLSafeSerializer(self._keys, salt=f"digest.{p.value}") for p in Purpose}
        self._signers = {p: s.make_signer(s.salt) for p, s in self._serializers.items()}

    def _serializer(self, purpose: Purpose) -> URLSafeSerializer:
        return self._serializers[purpose]

    def make(self, purpose: Purpose, subscriber_id: int) -> str:
        """The same token as ``URLSafeSerializer.dumps`` (signed with the newest key)."""
        return self._signers[purpose].sign(self._serializers[purpose].dump_payload(subscriber_id)).decode("ascii")

    def read(self, purpose: Purpose, token: str) -> int:
        """Return the subscriber id, or raise BadToken."""
        try:
            value = self._serializer(purpose).loads(token)
        except (BadData, UnicodeError, ValueError) as exc:
            raise BadToken(str(purpose)) from exc
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadToken(str(purpose))
        return value

    def make_confirm(self, subscriber_id: int, issued_at: datetime) -> str:
        return str(self._serializer(Purpose.CONFIRM).dumps([subscriber_id, int(issued_at.timestamp())]))

    def read_confirm(self, token: str, now: datetime, max_age: timedelta) -> tuple[int, datetime]:
        """Return (subscriber id, issue time), or raise BadToken if invalid or older than ``max_age``."""
        try:
            value = self._serializer(Purpose.CONFIRM).loads(token)
        except (BadData, UnicodeError, ValueError) as exc:
            raise BadToken("confirm") from exc
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
            raise BadToken("confirm")
        issued_at = datetime.fromtimestamp(value[1], UTC)
        if now - issued_at > max_age:
            raise BadToken("confirm: expired")
        return value[0], issued_at

    def _mailbox_mac(self, key: str, subscriber_id: int) -> str:
        digest = hmac.new(key.encode(), f"mailto-unsubscribe:{subscriber_id}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:15]).decode().lower()

    def mailbox(self, subscriber_id: int) -> str:
        """A lower-case token for the local part of the mailto unsubscribe address.

        Mail systems may change the case of a local part, so this one is base32, not base64.
        """
        return f"{subscriber_id}-{self._mailbox_mac(self._keys[-1], subscriber_id)}"

    def read_mailbox(self, token: str) -> int:
        sid, _, mac = token.strip().lower().partition("-")
        if not sid.isdigit() or not mac:
            raise BadToken("mailbox")
        subscriber_id = int(sid)
        for key in self._keys:
            if hmac.compare_digest(mac, self._mailbox_mac(key, subscriber_id)):
                return subscriber_id
        raise BadToken("mailbox")
