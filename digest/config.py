"""Settings: the one place that reads the environment (``DIGEST_*`` variables and ``.env``)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
SAMPLE_DATA_DIR = Path(__file__).resolve().parent / "sample_data"

TRANSPORTS = ("smtp", "postmark", "sendgrid", "outbox")


class Settings(BaseSettings):
    """Typed configuration, built once and passed down explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_file=".env", extra="ignore", populate_by_name=True
    )

    var_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str | None = None
    transport: str = "smtp"
    smtp_url: str = "smtp://127.0.0.1:25"
    api_token: str | None = None
    api_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    old_secret_keys: list[str] = Field(default_factory=list)
    from_: str = Field("Digest <digest@localhost>", alias="DIGEST_FROM")
    list_name: str = "Clinical evidence digest"
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    send_rate: float | None = None
    max_items: int = 8
    lookback_days: int = 7
    chunk_size: int = 250
    lease_seconds: int = 600
    outbox_dir: Path | None = None
    # Messages per ledger transaction for SMTP. 1 (the default) keeps the duplicate window after a
    # crash to one message; N trades a window of up to N re-sent messages (same Message-ID) for N
    # times fewer commits. See docs/benchmark.md.
    smtp_batch_size: int = Field(1, ge=1, le=500)
    # Benchmark only: worker processes write their database statement counts here (workers/stats.py).
    bench_stats_dir: Path | None = None

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, value: str) -> str:
        if value not in TRANSPORTS:
            raise ValueError(f"DIGEST_TRANSPORT must be one of {', '.join(TRANSPORTS)}, not {value!r}")
        return value

    @field_validator("old_secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    def model_post_init(self, __context: object) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'digest.db'}"
        if self.outbox_dir is None:
            self.outbox_dir = self.var_dir / "outbox"
        if not self.secret_key:
            self.secret_key = _stored_secret(self.var_dir / "secret")

    @property
    def from_domain(self) -> str:
        """The domain of the From address, used for Message-IDs, List-Id and the mailto unsubscribe."""
        address = self.from_.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "localhost"

    @property
    def public_host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def eager(self) -> bool:
        """Without a broker, Celery tasks run in-process through the same code path."""
        return not self.broker_url


def _stored_secret(path: Path) -> str:
    """Return the secret kept in ``var/secret``, generating it on first run."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead."""
    return Settings()
