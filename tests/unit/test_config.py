"""Settings that guard secrets: var/secret is created owner-only, a plain-http public base URL warns."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from digest.config import Settings, plain_http_warning


def test_the_generated_secret_is_owner_only_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY", raising=False)
    monkeypatch.setattr("os.umask", lambda mask: 0)  # even a permissive umask cannot widen it
    settings = Settings(var_dir=tmp_path / "var", database_url="sqlite://", secret_key="")
    secret = tmp_path / "var" / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text().strip() == settings.secret_key
    assert Settings(var_dir=tmp_path / "var", database_url="sqlite://", secret_key="").secret_key == settings.secret_key


@pytest.mark.parametrize(
    ("base_url", "warns"),
    [
        ("http://digest.example.org", True),
        ("HTTP://digest.example.org", True),
        ("https://digest.example.org", False),
        ("HTTPS://digest.example.org", False),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
    ],
)
def test_plain_http_base_url_for_a_public_host_warns(base_url: str, warns: bool) -> None:
    warning = plain_http_warning(Settings(database_url="sqlite://", secret_key="k", base_url=base_url))
    assert (warning is not None) == warns
    if warns:
        assert "plain http" in warning and "digest.example.org" in warning
