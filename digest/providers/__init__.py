"""Every email provider in one place: one module per provider in this package holds how to send
through it (its transport, built from Settings), how to read its webhooks if it calls back (check
the caller, then turn the body into provider-neutral ``DeliveryEvent``s), and the ``Provider``
record that registers both. The webhook route (``POST /webhooks/{name}``) and
``wiring.make_transport`` look providers up here instead of branching on names; no other module
names a provider. docs/providers.md says how to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from digest.config import TRANSPORTS, Settings
from digest.delivery.transport import Transport
from digest.events.delivery_event import DeliveryEvent


class NotVerified(Exception):
    """The webhook's credentials or signature did not verify (401); the message says what to set."""

    def __init__(self, message: str, challenge: str | None = None):
        super().__init__(message)
        self.challenge = challenge  # a WWW-Authenticate value, for providers that use basic auth


class ProviderConfigError(Exception):
    """The settings cannot build this provider's transport; the message names the variable."""


@dataclass(frozen=True)
class WebhookCall:
    """What a webhook handler gets: the request as received, the settings, and a way to fetch a
    URL the payload names (signing certificates, subscription confirmations)."""

    body: bytes
    headers: Mapping[str, str]  # lower-case names
    form: Mapping[str, str]  # form fields, for form-encoded posts (SendGrid Inbound Parse)
    settings: Settings
    fetch: Callable[[str], bytes]


@dataclass(frozen=True)
class Provider:
    name: str
    transport: Callable[[Settings], Transport]
    # Checks that need the headers only (credentials, a signature's age), run before the body is
    # read, so that an unauthenticated caller cannot make the server read a large body. Raises NotVerified.
    precheck: Callable[[Mapping[str, str], Settings, datetime], None] | None = None
    # Delivery events (bounces, complaints, unsubscribes): verify, then parse. Raises NotVerified
    # or InvalidPayload. None: this provider does not call back.
    events: Callable[[WebhookCall], list[DeliveryEvent]] | None = None
    # Mail to the List-Unsubscribe mailto address forwarded by the provider: its recipients.
    inbound: Callable[[WebhookCall], list[str]] | None = None


def _registry() -> dict[str, Provider]:
    from digest.providers import outbox, postmark, sendgrid, ses, smtp

    found = {p.name: p for p in (smtp.PROVIDER, postmark.PROVIDER, sendgrid.PROVIDER, ses.PROVIDER, outbox.PROVIDER)}
    assert set(found) == set(TRANSPORTS), "config.TRANSPORTS and the registry must name the same providers"
    return found


_PROVIDERS: dict[str, Provider] | None = None


def providers() -> dict[str, Provider]:
    """Every registered provider by name (``DIGEST_TRANSPORT`` values)."""
    global _PROVIDERS
    if _PROVIDERS is None:
        _PROVIDERS = _registry()
    return _PROVIDERS


def get(name: str) -> Provider | None:
    return providers().get(name)
