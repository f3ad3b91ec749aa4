"""Settings: the one place that reads the environment (``DIGEST_*`` variables and ``.env``)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TRANSPORTS = ("smtp", "postmark", "sendgrid", "ses", "outbox")  # digest/providers registers each
# The languages of the emails and subscriber pages (digest/i18n.py): English is the source language,
# each other one a catalogue in digest/locales/<locale>/LC_MESSAGES/messages.po. The first is the default.
LOCALES = ("en", "es", "fr")
DEFAULT_LOCALE = LOCALES[0]


class Settings(BaseSettings):
    """Typed configuration, built once and passed down explicitly."""

    model_config = SettingsConfigDict(env_prefix="DIGEST_", env_file=".env", extra="ignore", populate_by_name=True)

    var_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str | None = None
    redis_url: str | None = None  # send-rate bucket and sign-up counters; defaults to a redis:// broker URL
    transport: str = "smtp"
    smtp_url: str = "smtp://127.0.0.1:25"
    api_token: str | None = None
    api_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    old_secret_keys: list[str] = Field(default_factory=list)
    from_: str = Field("Digest <digest@localhost>", alias="DIGEST_FROM")
    list_name: str = "Clinical evidence digest"
    # The sender's postal address, printed in the footer of every email and page (CAN-SPAM asks
    # commercial email to carry one). Empty: no address line.
    postal_address: str = ""
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    send_rate: float | None = Field(None, gt=0)
    # When the transport throttles, the shared send rate is halved, never below this (messages/s).
    send_rate_floor: float = Field(1.0, gt=0)
    max_items: int = 8
    lookback_days: int = 7
    chunk_size: int = 250
    lease_seconds: int = 600
    # How often beat polls for due digests and scheduled issues. A slot is reached at most this late.
    dispatch_seconds: float = Field(60.0, ge=1, le=3600)
    outbox_dir: Path | None = None
    # Bounce intake for your own MTA (docs/bounces.md): messages go out with the return path
    # bounces+<token>@DIGEST_BOUNCE_DOMAIN; `digest bounces serve` listens on DIGEST_BOUNCE_LISTEN.
    bounce_domain: str | None = None
    bounce_listen: str = "127.0.0.1:2526"
    # A soft bounce (mailbox full, given up after retries) suppresses the address once it has had
    # this many within this many days.
    soft_bounce_limit: int = Field(3, ge=1, le=100)
    soft_bounce_days: int = Field(30, ge=1, le=365)
    # The transport circuit (docs/delivery.md): after a connection or account failure, the first
    # probe waits this long; each failed probe doubles the wait, up to an hour.
    probe_first_seconds: float = Field(30.0, ge=1, le=3600)
    # Sign-up abuse limits: confirmation emails per address per day, sign-up posts per client address.
    confirmations_per_address_per_day: int = 3
    signups_per_client: int = 10
    signup_window_seconds: int = 3600
    # Editor login attempts: token buckets per client address and per address typed, refilled over
    # the window (no lockout: after the wait the right password works). In Redis when there is one.
    login_attempts_per_client: int = Field(10, ge=1)
    login_attempts_per_account: int = Field(10, ge=1)
    login_window_seconds: int = Field(300, ge=1)
    # Provider webhooks: Postmark sends basic-auth credentials, SendGrid signs with ECDSA P-256.
    postmark_webhook_user: str | None = None
    postmark_webhook_password: str | None = None
    sendgrid_webhook_public_key: str | None = None
    # Amazon SES (DIGEST_TRANSPORT=ses): region, the configuration set that publishes bounces and
    # complaints to SNS, and the SNS topics whose notifications /webhooks/ses accepts (empty: any
    # topic, the signature is still checked). AWS credentials come from boto3's usual chain.
    ses_region: str | None = None
    ses_configuration_set: str | None = None
    ses_topic_arn: str | None = None  # one ARN, or several separated by commas
    # Outgoing webhooks (digest/integrations/webhooks.py): attempts per event before it is marked
    # failed, the first retry's delay in seconds (doubled per attempt, jittered), the receiver's time limit.
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_retry_seconds: float = Field(30.0, gt=0, le=86400)
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # Bearer token for the JSON API (POST /api/summaries); unset: the API answers 401 to everyone.
    ingest_token: str | None = None
    # GET /metrics: with a token, only to "Authorization: Bearer <token>"; without, loopback clients only.
    metrics_token: str | None = None
    # /docs and /redoc (interactive API pages); /openapi.json is always served.
    api_docs: bool = False
    # Feed fetching (digest/ingest/fetching.py): addresses that are loopback, private, link-local,
    # multicast or reserved are refused unless inside one of these networks (CIDR, comma-separated);
    # a feed's size cap, the deadline of one whole fetch, and how many feeds are polled at once.
    feed_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    feed_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    feed_deadline_seconds: float = Field(30.0, gt=0)
    feed_concurrency: int = Field(4, ge=1, le=64)
    # Largest body POST /api/summaries accepts (413 above it, before reading); other routes have
    # fixed limits (digest/web/limits.py): webhooks and editor forms 1 MiB, public forms 64 KiB.
    api_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # `digest serve`: uvicorn worker processes (each its own interpreter, so both cores serve a
    # burst of one-click unsubscribes), and database connections kept open per process, which is
    # also how many requests one web process runs at once. Few is faster: a request is mostly
    # Python, and every extra thread queues for the GIL (2,000 one-click POSTs from 50 clients, two
    # processes: p99 88-104 ms with 2-4, 240 ms with 20).
    web_workers: int = Field(1, ge=1, le=64)
    db_pool_size: int = Field(4, ge=1, le=200)
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Prometheus multiprocess files: every process of one host (web, worker children) writes here and
    # the exporter (``/metrics``, ``digest worker --metrics-port``) adds them up.
    metrics_dir: Path | None = None
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

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"DIGEST_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {value!r}")
        return level

    @field_validator("old_secret_keys", "feed_allow_networks", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("feed_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        try:
            return [str(ipaddress.ip_network(v, strict=False)) for v in value]
        except ValueError as exc:
            raise ValueError(f"DIGEST_FEED_ALLOW_NETWORKS: {exc}") from None

    def model_post_init(self, __context: object) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'digest.db'}"
        if self.outbox_dir is None:
            self.outbox_dir = self.var_dir / "outbox"
        if self.metrics_dir is None:
            self.metrics_dir = self.var_dir / "metrics"
        if not self.secret_key:
            self.secret_key = _stored_secret(self.var_dir / "secret")

    @property
    def from_domain(self) -> str:
        """The domain of the From address, used for Message-IDs, List-Id and the mailto unsubscribe."""
        address = self.from_.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "localhost"

    @property
    def https(self) -> bool:
        """DIGEST_BASE_URL is https (in any case: HTTPS://, Https://): cookies Secure, HSTS sent."""
        return urlsplit(self.base_url.strip()).scheme.lower() == "https"

    @property
    def public_host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis for the send-rate bucket and sign-up counters: DIGEST_REDIS_URL, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    @property
    def ses_topic_arns(self) -> frozenset[str]:
        return frozenset(a.strip() for a in (self.ses_topic_arn or "").split(",") if a.strip())

    @property
    def eager(self) -> bool:
        """Without a broker, Celery tasks run in-process through the same code path."""
        return not self.broker_url


def plain_http_warning(settings: Settings) -> str | None:
    """A warning when DIGEST_BASE_URL is plain http for a public host: the unsubscribe, preference
    and login pages (and the session cookie) would travel unencrypted."""
    host = settings.public_host
    if settings.https or host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost"):
        return None
    return (
        f"DIGEST_BASE_URL {settings.base_url!r} is plain http for the public host {host}: links in every email, "
        "the editor's login and its cookie travel unencrypted; use https:// behind a TLS proxy"
    )


def _stored_secret(path: Path) -> str:
    """Return the secret kept in ``var/secret``, generating it on first run."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created readable by its owner only: never a moment where another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead."""
    return Settings()
