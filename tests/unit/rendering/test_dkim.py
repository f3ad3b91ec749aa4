"""DKIM configuration: all three variables or none, and a key that cannot sign fails at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import Settings
from digest.wiring import ConfigError, make_signer


def _settings(tmp_path: Path, **dkim: object) -> Settings:
    return Settings(var_dir=tmp_path, database_url="sqlite://", secret_key="k", **dkim)  # type: ignore[arg-type]


def test_no_dkim_variables_means_no_signing(tmp_path: Path) -> None:
    assert make_signer(_settings(tmp_path)) is None


def test_half_configured_dkim_names_the_missing_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_DKIM_SELECTOR, DIGEST_DKIM_KEY_FILE"):
        make_signer(_settings(tmp_path, dkim_domain="news.example.org"))


def test_unreadable_or_invalid_keys_fail_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read DIGEST_DKIM_KEY_FILE"):
        make_signer(_settings(tmp_path, dkim_domain="d.org", dkim_selector="s", dkim_key_file=tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="cannot sign"):
        make_signer(_settings(tmp_path, dkim_domain="d.org", dkim_selector="s", dkim_key_file=junk))
