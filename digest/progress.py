"""How long-running services report progress without printing: the CLI passes a callback that draws a bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Called as work advances: ``step`` names the phase ("checking", "writing"), ``done`` of ``total``."""

    def __call__(self, step: str, done: int, total: int) -> None: ...


def silent(step: str, done: int, total: int) -> None:
    """The default: report nothing."""
