from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from digest.editors import service


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same algorithm (argon2id), minimal cost: the suite tests behaviour, not hashing speed."""
    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
