"""Signed tokens in links: bound to one subscriber and one purpose, verified against current and old keys.

Unsubscribe and preference tokens never expire (an email from years ago must still work); after a
key rotation the old keys in ``DIGEST_OLD_SECRET_KEYS`` keep verifying while new tokens use the new key.
Confirmation tokens carry the time they were issued: they expire, and one issued before an
unsubscribe cannot undo it.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from itsdangerous import BadData, URLSafeSerializer
from itsdangerous.encoding import base64_encode

from digest.macs import DigestMod, mac, sha256_mac


class Purpose(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CONFIRM = "confirm"
    WEB_VERSION = "web"  # names a delivery, not a subscriber: the web version of one message


class BadToken(Exception):
    """The token is forged, garbled, or for another purpose."""


class IdSigner:
    """What ``serializer.dumps(an int)`` gives, for an itsdangerous ``URLSafeSerializer``: the id's
    JSON in base64, signed with the newest key.

    Why: the send path signs four ids per message (the unsubscribe, preferences and web-version
    tokens, the tracked links' delivery part), and the serializer's signer derives its key again for every signature.
    Here the derived key of the newest secret is kept, and the MAC comes from its keyed state
    (digest.macs). itsdangerous compresses a payload when zlib makes it 2 bytes shorter, which it
    cannot below 10 bytes (zlib adds 6 bytes to at least 2 of data); longer ids go its way."""

    def __init__(self, serializer: URLSafeSerializer):
        signer = serializer.make_signer(serializer.salt)
        self._serializer = serializer
        self._sep = signer.sep
        self._key = signer.derive_key()
        self._digestmod: DigestMod = signer.algorithm.digest_method  # type: ignore[attr-defined]  # HMACAlgorithm's

    def dumps(self, value: int) -> str:
        json = str(int(value)).encode("ascii")
        payload = base64_encode(json) if len(json) < 10 else self._serializer.dump_payload(value)
        return (payload + self._sep + base64_encode(mac(self._key, payload, self._digestmod).digest())).decode("ascii")


class Tokens:
    def __init__(self, secret_key: str, old_keys: list[str] | None = None):
        # itsdangerous signs with the last key and verifies with any of them.
        self._keys = [*(old_keys or []), secret_key]
        self._serializers = {p: URLSafeSerializer(self._keys, salt=f"digest.{p.value}") for p in Purpose}
        self._signers = {p: IdSigner(serializer) for p, serializer in self._serializers.items()}

    def _serializer(self, purpose: Purpose) -> URLSafeSerializer:
        return self._serializers[purpose]

    def make(self, purpose: Purpose, subscriber_id: int) -> str:
        """A token for ``subscriber_id``: what ``URLSafeSerializer.dumps`` gives (see ``IdSigner``)."""
        return self._signers[purpose].dumps(subscriber_id)

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
        digest = sha256_mac(key, f"mailto-unsubscribe:{subscriber_id}").digest()
        return base64.b32encode(digest[:15]).decode().lower()

    def mailbox(self, subscriber_id: int) -> str:
        """A lower-case token for the local part of the mailto unsubscribe address.

        Mail systems may change the case of a local part, so this one is base32, not base64.
        """
        return f"{subscriber_id}-{self._mailbox_mac(self._keys[-1], subscriber_id)}"

    def read_mailbox(self, token: str) -> int:
        sid, _, given = token.strip().lower().partition("-")
        # ASCII only: "²".isdigit() is true but int() refuses it, and compare_digest refuses non-ASCII str.
        if not (sid.isascii() and sid.isdigit() and len(sid) <= 18 and given and given.isascii()):
            raise BadToken("mailbox")
        subscriber_id = int(sid)
        for key in self._keys:
            if hmac.compare_digest(given, self._mailbox_mac(key, subscriber_id)):
                return subscriber_id
        raise BadToken("mailbox")
