"""The outbox: writes each message as an ``.eml`` file in ``DIGEST_OUTBOX_DIR`` (for demos, previews
and tests); nothing calls back."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from digest.config import Settings
from digest.delivery.transport import SendResult, Transport
from digest.providers import Provider
from digest.rendering.message import OutgoingMessage


class OutboxTransport:
    name = "outbox"
    wants_raw = True
    batch_size = 1

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        # Messages carry personal unsubscribe and preference links: owner-only, like a mailbox.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        results = []
        for msg in messages:
            stem = msg.message_id.strip("<>").replace("@", "_at_")
            fd = os.open(self.directory / f"{stem}.eml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(msg.raw)
            results.append(SendResult.ok(msg.delivery_id, provider_id=stem))
        return results

    def probe(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        return None


# ---------------------------------------------------------------------------------------------
# Registration


def _transport(settings: Settings) -> Transport:
    assert settings.outbox_dir is not None
    return OutboxTransport(settings.outbox_dir)


PROVIDER = Provider("outbox", _transport)
