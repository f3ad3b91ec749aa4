"""Build every service from Settings in one place: the CLI, the web app and the workers all call this.

No other module chooses a transport, opens an engine or reads a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from digest.config import TEMPLATES_DIR, Settings
from digest.db import make_engine, make_session_factory, utcnow
from digest.delivery.outbox import OutboxTransport
from digest.delivery.service import DeliveryService, RateLimiter, Unlimited
from digest.delivery.smtp import SMTPConfig, SMTPTransport
from digest.delivery.transport import Transport
from digest.rendering.compiled import EmailRenderer
from digest.rendering.compose import MessageComposer
from digest.selection.service import PlanOptions
from digest.subscribers.tokens import Tokens


class ConfigError(Exception):
    """The configuration cannot work; the message says which variable to fix."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tokens: Tokens
    renderer: EmailRenderer
    composer: MessageComposer
    transport: Transport
    delivery: DeliveryService
    clock: Callable[[], datetime]

    def plan_options(self, *, include_new_subscribers: bool = False) -> PlanOptions:
        return PlanOptions(
            max_items=self.settings.max_items,
            lookback_days=self.settings.lookback_days,
            include_new_subscribers=include_new_subscribers,
        )

    def close(self) -> None:
        self.transport.close()
        self.engine.dispose()


def make_transport(settings: Settings) -> Transport:
    """The one place that picks a sender, by ``DIGEST_TRANSPORT``."""
    if settings.transport == "smtp":
        return SMTPTransport(SMTPConfig.from_url(settings.smtp_url), batch_size=settings.smtp_batch_size)
    if settings.transport == "outbox":
        assert settings.outbox_dir is not None
        return OutboxTransport(settings.outbox_dir)
    raise ConfigError(f"DIGEST_TRANSPORT={settings.transport!r} is not available in this build")


def make_rate_limiter(settings: Settings) -> RateLimiter:
    return Unlimited()


def build_services(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Services:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    tokens = Tokens(settings.secret_key, settings.old_secret_keys)
    renderer = EmailRenderer(TEMPLATES_DIR, base_url=settings.base_url, list_name=settings.list_name)
    composer = MessageComposer(
        renderer,
        tokens,
        base_url=settings.base_url,
        from_header=settings.from_,
        list_name=settings.list_name,
        domain=settings.from_domain,
        secret=settings.secret_key,
    )
    transport = transport or make_transport(settings)
    delivery = DeliveryService(
        sessions,
        composer,
        transport,
        clock=clock,
        lease=timedelta(seconds=settings.lease_seconds),
        limiter=make_rate_limiter(settings),
    )
    return Services(settings, engine, sessions, tokens, renderer, composer, transport, delivery, clock)
