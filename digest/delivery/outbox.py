"""The outbox transport: writes each message as an ``.eml`` file (for demos, previews and tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from digest.delivery.transport import SendResult
from digest.rendering.message import OutgoingMessage


class OutboxTransport:
    name = "outbox"
    wants_raw = True
    batch_size = 1

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.directory.mkdir(parents=True, exist_ok=True)
        results = []
        for msg in messages:
            stem = msg.message_id.strip("<>").replace("@", "_at_")
            (self.directory / f"{stem}.eml").write_bytes(msg.raw)
            results.append(SendResult.ok(msg.delivery_id, provider_id=stem))
        return results

    def close(self) -> None:
        return None
