"""SMTP relays (``DIGEST_SMTP_URL``, one URL or several separated by commas, tried in order): the
transport is in ``transport.py``; bounces come back as DSNs through ``digest bounces serve``
(digest/events/intake.py), not through a webhook."""

from __future__ import annotations

from digest.config import Settings
from digest.delivery.transport import Transport
from digest.providers import Provider
from digest.providers.smtp.transport import SMTPConfig, SMTPTransport


def _transport(settings: Settings) -> Transport:
    return SMTPTransport(SMTPConfig.from_urls(settings.smtp_url), batch_size=settings.smtp_batch_size)


PROVIDER = Provider("smtp", _transport)
