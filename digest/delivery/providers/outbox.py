"""``.eml`` files in ``DIGEST_OUTBOX_DIR``, for previews and tests."""

from __future__ import annotations

from digest.config import Settings
from digest.delivery.outbox import OutboxTransport
from digest.delivery.providers import Provider
from digest.delivery.transport import Transport


def _transport(settings: Settings) -> Transport:
    assert settings.outbox_dir is not None
    return OutboxTransport(settings.outbox_dir)


PROVIDER = Provider("outbox", _transport)
