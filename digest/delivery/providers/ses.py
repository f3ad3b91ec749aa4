"""Amazon SES: the SESv2 transport (boto3), and bounce/complaint notifications through SNS
(signature-verified)."""

from __future__ import annotations

import threading

from digest.config import Settings
from digest.delivery.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.delivery.ses import SESTransport
from digest.delivery.transport import Transport
from digest.events.webhooks import ses
from digest.events.webhooks.event import DeliveryEvent


def _transport(settings: Settings) -> Transport:
    if not settings.ses_region:
        raise ProviderConfigError("DIGEST_TRANSPORT=ses needs DIGEST_SES_REGION (e.g. eu-west-1)")
    return SESTransport(
        settings.ses_region, configuration_set=settings.ses_configuration_set, endpoint_url=settings.api_url
    )


_verifiers: dict[tuple[int, frozenset[str]], ses.SNSVerifier] = {}
_lock = threading.Lock()


def _verifier(call: WebhookCall) -> ses.SNSVerifier:
    """One verifier (and certificate cache) per fetch function and topic list."""
    key = (id(call.fetch), frozenset(call.settings.ses_topic_arns))
    with _lock:
        if key not in _verifiers:
            _verifiers[key] = ses.SNSVerifier(call.fetch, key[1])
        return _verifiers[key]


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    try:
        return ses.read(call.body, _verifier(call))
    except ses.SignatureError as exc:
        raise NotVerified(f"SNS message refused: {exc}") from None


PROVIDER = Provider("ses", _transport, events=_events)
