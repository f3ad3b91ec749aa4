"""Build every service from Settings in one place: the CLI, the web app and the workers all call this.

No other module chooses a transport, opens an engine or reads a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr

import requests
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from digest import providers
from digest.config import Settings
from digest.db import make_engine, make_session_factory, utcnow
from digest.delivery.circuit import Circuit
from digest.delivery.confirmation import ConfirmationMailer
from digest.delivery.ratelimit import AdaptiveRate
from digest.delivery.service import DeliveryService, RateLimiter, Unlimited
from digest.delivery.transport import Transport
from digest.editors.throttle import Buckets, Limit, LoginThrottle, MemoryBuckets, RedisBuckets
from digest.events.inbound import verp_address
from digest.events.intake import BounceIntake
from digest.events.service import SoftBounceLimit
from digest.integrations.webhooks import PENDING_KEY, WebhookSender
from digest.issues.links import ClickLinks
from digest.issues.planning import pinned_by_issue
from digest.observability import SendMetrics, send_metrics
from digest.providers import ProviderConfigError
from digest.queue import BrokerQueue, InProcessQueue, TaskQueue
from digest.rendering.compiled import EmailRenderer
from digest.rendering.compose import MessageComposer
from digest.rendering.dkim import DKIMSigner, check_alignment
from digest.rendering.shared_bodies import BodyStore, RedisBodyStore
from digest.selection.service import PlanOptions
from digest.subscribers.signup import ClientLimiter, DatabaseClientLimiter, RedisClientLimiter
from digest.subscribers.tokens import Tokens


class ConfigError(Exception):
    """The configuration cannot work; the message says which variable to fix."""


def https_get(url: str) -> bytes:
    """GET a URL a webhook payload names (signing certificates, subscription confirmations)."""
    response = requests.get(url, timeout=(5, 15))
    response.raise_for_status()
    return response.content


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tokens: Tokens
    links: ClickLinks
    renderer: EmailRenderer
    composer: MessageComposer
    transport: Transport
    delivery: DeliveryService
    clock: Callable[[], datetime]
    metrics: SendMetrics
    confirmations: ConfirmationMailer
    client_limiter: ClientLimiter
    queue: TaskQueue  # where work is handed over: the broker's workers, or this process
    webhooks: WebhookSender
    fetch_url: Callable[[str], bytes] = https_get  # what webhooks use to fetch the URLs they name

    def plan_options(self, *, include_new_subscribers: bool = False) -> PlanOptions:
        return PlanOptions(
            max_items=self.settings.max_items,
            lookback_days=self.settings.lookback_days,
            include_new_subscribers=include_new_subscribers,
        )

    def close(self) -> None:
        self.webhooks.close()
        self.queue.close()
        self.transport.close()
        self.engine.dispose()


def make_transport(settings: Settings) -> Transport:
    """The one place that picks a sender: the provider registered under ``DIGEST_TRANSPORT``."""
    provider = providers.get(settings.transport)
    if provider is None:
        raise ConfigError(f"DIGEST_TRANSPORT={settings.transport!r} is not available in this build")
    try:
        return provider.transport(settings)
    except ProviderConfigError as exc:
        raise ConfigError(str(exc)) from None


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """With Redis, a rate shared by every worker: ``DIGEST_SEND_RATE`` (unset: unlimited), cut when
    the transport throttles. Without Redis nothing is shared: no rate, and a throttle only pauses."""
    url = settings.shared_redis_url
    if url is None:
        if settings.send_rate is not None:
            raise ConfigError(
                "DIGEST_SEND_RATE needs Redis to share the rate across workers: "
                "set DIGEST_REDIS_URL, or a redis:// DIGEST_BROKER_URL"
            )
        return Unlimited()
    return AdaptiveRate.from_url(url, settings.send_rate, floor=settings.send_rate_floor)


def make_body_store(settings: Settings) -> Callable[[str], BodyStore] | None:
    """With Redis, rendered variant bodies are shared by every process (each variant rendered once
    per send, not once per process); without it each process renders its own."""
    url = settings.shared_redis_url
    if url is None:
        return None
    return lambda fingerprint: RedisBodyStore.from_url(url, fingerprint, settings.secret_key)


def make_signer(settings: Settings) -> Callable[[bytes], bytes] | None:
    """DKIM when all of DIGEST_DKIM_DOMAIN, _SELECTOR and _KEY_FILE are set; none when none is."""
    given = {
        "DIGEST_DKIM_DOMAIN": settings.dkim_domain,
        "DIGEST_DKIM_SELECTOR": settings.dkim_selector,
        "DIGEST_DKIM_KEY_FILE": settings.dkim_key_file,
    }
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigError(
            f"DKIM is half configured: set {', '.join(missing)} too (or unset all DIGEST_DKIM_* variables)"
        )
    assert settings.dkim_domain and settings.dkim_selector and settings.dkim_key_file
    try:
        check_alignment(settings.dkim_domain, parseaddr(settings.from_)[1])
        return DKIMSigner.from_file(settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def make_login_throttle(settings: Settings, clock: Callable[[], datetime] = utcnow) -> LoginThrottle:
    """Editor login attempts per client and per address: in Redis when there is one, else in-process."""
    window = settings.login_window_seconds
    buckets: Buckets = (
        RedisBuckets(settings.shared_redis_url)
        if settings.shared_redis_url
        else MemoryBuckets(clock=lambda: clock().timestamp())
    )
    return LoginThrottle(
        buckets, Limit(settings.login_attempts_per_client, window), Limit(settings.login_attempts_per_account, window)
    )


def bounce_return_path(settings: Settings, tokens: Tokens) -> Callable[[int], str] | None:
    """With DIGEST_BOUNCE_DOMAIN: subscriber id -> ``bounces+<token>@domain`` (VERP), else None."""
    domain = settings.bounce_domain
    if not domain:
        return None
    return lambda subscriber_id: verp_address(tokens.mailbox(subscriber_id), domain)


def bounce_intake(services: Services) -> BounceIntake:
    """What ``digest bounces serve`` hands each report to."""
    settings = services.settings
    if not settings.bounce_domain:
        raise ConfigError("digest bounces serve needs DIGEST_BOUNCE_DOMAIN (the domain of the VERP return paths)")
    soft = SoftBounceLimit(settings.soft_bounce_limit, settings.soft_bounce_days)
    return BounceIntake(services.sessions, services.tokens, settings.bounce_domain, services.clock, soft)


def make_client_limiter(settings: Settings) -> ClientLimiter:
    """Sign-up posts per client address: in Redis when there is one, else counted in the database."""
    window = timedelta(seconds=settings.signup_window_seconds)
    if settings.shared_redis_url:
        return RedisClientLimiter(settings.shared_redis_url, settings.signups_per_client, window)
    return DatabaseClientLimiter(settings.signups_per_client, window)


def build_services(
    settings: Settings,
    *,
    transport: Transport | None = None,
    clock: Callable[[], datetime] = utcnow,
    queue: TaskQueue | None = None,
    fetch_url: Callable[[str], bytes] | None = None,
) -> Services:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    sessions = make_session_factory(engine)
    tokens = Tokens(settings.secret_key, settings.old_secret_keys)
    links = ClickLinks(settings.secret_key, settings.old_secret_keys, settings.base_url)
    renderer = EmailRenderer(
        base_url=settings.base_url,
        list_name=settings.list_name,
        link_signer=links.sign_url,
        postal_address=settings.postal_address,
        shared=make_body_store(settings),
    )
    transport = transport or make_transport(settings)
    composer = MessageComposer(
        renderer,
        tokens,
        base_url=settings.base_url,
        from_header=settings.from_,
        list_name=settings.list_name,
        domain=settings.from_domain,
        secret=settings.secret_key,
        sign=make_signer(settings),
        click_base=links.click_base,
        raw=transport.wants_raw,
        return_path=bounce_return_path(settings, tokens),
    )
    assert settings.metrics_dir is not None
    metrics = send_metrics(settings.metrics_dir)
    delivery = DeliveryService(
        sessions,
        composer,
        transport,
        clock=clock,
        limiter=make_rate_limiter(settings),
        recorder=metrics,
        circuit=Circuit(sessions, transport.name, clock, probe_first_seconds=settings.probe_first_seconds),
        pinned_of=pinned_by_issue,
    )
    confirmations = ConfirmationMailer(
        sessions, renderer, composer, transport, tokens, base_url=settings.base_url, clock=clock
    )
    webhooks = WebhookSender(
        engine,
        clock,
        max_attempts=settings.webhook_max_attempts,
        retry_seconds=settings.webhook_retry_seconds,
        timeout=settings.webhook_timeout_seconds,
    )
    queue = queue or (InProcessQueue(delivery, confirmations, webhooks) if settings.eager else BrokerQueue(settings))
    _queue_webhooks_after_commit(sessions, queue)
    return Services(
        settings,
        engine,
        sessions,
        tokens,
        links,
        renderer,
        composer,
        transport,
        delivery,
        clock,
        metrics=metrics,
        confirmations=confirmations,
        client_limiter=make_client_limiter(settings),
        queue=queue,
        webhooks=webhooks,
        fetch_url=fetch_url or https_get,
    )


def _queue_webhooks_after_commit(sessions: sessionmaker[Session], queue: TaskQueue) -> None:
    """A transaction that emitted webhook events queues the sending task once it has committed (so
    the task finds the rows). After a rollback the mark may stay until the session's next commit:
    that queues one task with nothing to send, which is harmless."""

    def committed(session: Session) -> None:
        if session.info.pop(PENDING_KEY, False):
            queue.deliver_webhooks()

    event.listen(sessions, "after_commit", committed)
