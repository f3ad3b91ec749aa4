"""Amazon SES: the SESv2 transport (boto3), and bounce and complaint notifications through SNS
(signature-verified), at ``POST /webhooks/ses``.

Sending: SESv2 ``SendEmail`` with the raw MIME message. SES takes the message as it goes on the wire
(``Content.Raw``), so the headers, the List-Unsubscribe pair and the DKIM signature (if configured
here; SES can add its own) arrive as rendered. The configuration set
(``DIGEST_SES_CONFIGURATION_SET``) is where SES publishes bounce and complaint events to SNS (read
below). Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
a profile, an instance role); the region from ``DIGEST_SES_REGION``. ``DIGEST_API_URL`` overrides
the endpoint (a VPC endpoint, a local stand-in).

Errors map onto failure classes: an account that may not send (suspended, sending paused, an
unverified identity, refused credentials) is the connection's; ``TooManyRequests`` and
``LimitExceeded`` are throttling; ``MessageRejected`` (content) fails that message; 5xx is
temporary. boto3's own retries are off: the ledger and the circuit decide when to try again.

Notifications: SNS signs every message: the signature covers a canonical string of the message's
fields (``SignatureVersion`` 1: SHA1, 2: SHA256, RSA PKCS#1 v1.5) and the public key comes in the
X.509 certificate at ``SigningCertURL``. The URL must be HTTPS on an SNS host
(``sns.<region>.amazonaws.com``, ``.com.cn`` in China): a certificate from anywhere else, or a
signature that does not verify, is refused before anything is read. Certificates are cached by URL.
``SubscriptionConfirmation`` messages are confirmed by fetching their ``SubscribeURL`` (same host
rule). With ``DIGEST_SES_TOPIC_ARN`` set, only those topics are accepted. The SES payload in
``Message`` is either an SNS notification (``notificationType``) or a configuration-set event
(``eventType``): Bounce (``Permanent`` = hard, else soft) and Complaint.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.config import Settings
from digest.delivery.transport import Transport
from digest.events.delivery_event import DeliveryEvent, EventKind, InvalidPayload, load_json, parse_time
from digest.providers import NotVerified, Provider, ProviderConfigError, WebhookCall

NAME = "ses"


# ---------------------------------------------------------------------------------------------
# Webhooks


SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class SignatureError(Exception):
    """The SNS message is not signed by SNS (bad URL, certificate or signature)."""


def sns_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(SNS_HOST.match(parts.hostname or "")) and parts.port in (None, 443)


class SNSVerifier:
    """Checks SNS signatures; ``fetch`` GETs an HTTPS URL (certificates, subscription confirmations)."""

    def __init__(self, fetch: Callable[[str], bytes], topics: frozenset[str] = frozenset()):
        self.fetch = fetch
        self.topics = topics
        self._certs: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def verify(self, message: dict[str, Any]) -> None:
        kind = message.get("Type")
        fields = _SIGNED_FIELDS.get(str(kind))
        if fields is None:
            raise SignatureError(f"unknown SNS message type {kind!r}")
        if self.topics and message.get("TopicArn") not in self.topics:
            raise SignatureError(f"topic {message.get('TopicArn')!r} is not in DIGEST_SES_TOPIC_ARN")
        algorithm = _HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise SignatureError(f"unsupported SignatureVersion {message.get('SignatureVersion')!r}")
        key = self._key(str(message.get("SigningCertURL") or ""))
        canonical = "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None)
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
            key.verify(signature, canonical.encode(), padding.PKCS1v15(), algorithm())
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise SignatureError("the signature does not verify") from exc

    def _key(self, url: str) -> rsa.RSAPublicKey:
        if not sns_url(url):
            raise SignatureError(f"SigningCertURL {url!r} is not an SNS host over HTTPS")
        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        try:
            cert = x509.load_pem_x509_certificate(self.fetch(url))
        except ValueError as exc:
            raise SignatureError(f"the certificate at {url} cannot be read") from exc
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("the SNS certificate does not hold an RSA key")
        with self._lock:
            self._certs[url] = key
        return key

    def confirm(self, message: dict[str, Any]) -> None:
        """Confirm a (verified) subscription by visiting its SubscribeURL."""
        url = str(message.get("SubscribeURL") or "")
        if not sns_url(url):
            raise SignatureError(f"SubscribeURL {url!r} is not an SNS host over HTTPS")
        self.fetch(url)


def read(body: bytes, verifier: SNSVerifier) -> list[DeliveryEvent]:
    """Verify one SNS POST; confirm subscriptions; return the SES events of a notification."""
    message = load_json(body)
    if not isinstance(message, dict):
        raise InvalidPayload("expected one SNS message (a JSON object)")
    verifier.verify(message)
    if message["Type"] == "SubscriptionConfirmation":
        verifier.confirm(message)
        return []
    if message["Type"] != "Notification":
        return []
    try:
        payload = json.loads(str(message.get("Message") or ""))
    except json.JSONDecodeError as exc:
        raise InvalidPayload(f"the SNS Message is not SES JSON: {exc}") from None
    return parse(payload, str(message.get("MessageId") or ""))


def parse(payload: Any, sns_id: str) -> list[DeliveryEvent]:
    if not isinstance(payload, dict):
        raise InvalidPayload("the SES notification is not a JSON object")
    kind = payload.get("notificationType") or payload.get("eventType")
    mail = payload.get("mail") or {}
    ids = (str(mail["messageId"]),) if mail.get("messageId") else ()
    if kind == "Bounce":
        bounce = payload.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        when = parse_time(bounce.get("timestamp"))
        return [
            DeliveryEvent(
                provider=NAME,
                event_id=f"{bounce.get('feedbackId') or sns_id}:{r.get('emailAddress', '')}",
                kind=EventKind.HARD_BOUNCE if hard else EventKind.SOFT_BOUNCE,
                email=str(r.get("emailAddress", "")).lower(),
                provider_message_ids=ids,
                occurred_at=when,
                detail=" ".join(
                    str(x)
                    for x in (bounce.get("bounceType"), bounce.get("bounceSubType"), r.get("diagnosticCode"))
                    if x
                ),
            )
            for r in bounce.get("bouncedRecipients") or []
            if r.get("emailAddress")
        ]
    if kind == "Complaint":
        complaint = payload.get("complaint") or {}
        return [
            DeliveryEvent(
                provider=NAME,
                event_id=f"{complaint.get('feedbackId') or sns_id}:{r.get('emailAddress', '')}",
                kind=EventKind.COMPLAINT,
                email=str(r.get("emailAddress", "")).lower(),
                provider_message_ids=ids,
                occurred_at=parse_time(complaint.get("timestamp")),
                detail=str(complaint.get("complaintFeedbackType") or "complaint"),
            )
            for r in complaint.get("complainedRecipients") or []
            if r.get("emailAddress")
        ]
    return []  # Delivery, Send, Open, ...: nothing to act on


# ---------------------------------------------------------------------------------------------
# Registration


def _transport(settings: Settings) -> Transport:
    if not settings.ses_region:
        raise ProviderConfigError("DIGEST_TRANSPORT=ses needs DIGEST_SES_REGION (e.g. eu-west-1)")
    from digest.providers.ses.transport import SESTransport  # boto3 only where SES sends

    return SESTransport(
        settings.ses_region, configuration_set=settings.ses_configuration_set, endpoint_url=settings.api_url
    )


_verifiers: dict[tuple[int, frozenset[str]], SNSVerifier] = {}
_lock = threading.Lock()


def _verifier(call: WebhookCall) -> SNSVerifier:
    """One verifier (and certificate cache) per fetch function and topic list."""
    key = (id(call.fetch), frozenset(call.settings.ses_topic_arns))
    with _lock:
        if key not in _verifiers:
            _verifiers[key] = SNSVerifier(call.fetch, key[1])
        return _verifiers[key]


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    try:
        return read(call.body, _verifier(call))
    except SignatureError as exc:
        raise NotVerified(f"SNS message refused: {exc}") from None


PROVIDER = Provider(NAME, _transport, events=_events)
