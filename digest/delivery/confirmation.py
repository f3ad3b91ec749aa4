"""The double opt-in email: a signed, expiring confirmation link, sent through the configured transport."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digest.db import session_scope
from digest.delivery.transport import TransientError, Transport
from digest.rendering.compiled import EmailRenderer
from digest.rendering.compose import MessageComposer
from digest.selection.choices import describe_choices
from digest.subscribers.models import Subscriber, SubscriberStatus, SuppressionReason
from digest.subscribers.suppression import suppression_reasons
from digest.subscribers.tokens import Purpose, Tokens

log = logging.getLogger(__name__)

CONFIRM_MAX_AGE = timedelta(days=7)


class ConfirmationMailer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        renderer: EmailRenderer,
        composer: MessageComposer,
        transport: Transport,
        tokens: Tokens,
        *,
        base_url: str,
        clock: Callable[[], datetime],
    ):
        self.sessions = sessions
        self.renderer = renderer
        self.composer = composer
        self.transport = transport
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    def confirm_url(self, subscriber_id: int, now: datetime) -> str:
        return f"{self.base_url}/confirm/{self.tokens.make_confirm(subscriber_id, now)}"

    def send(self, subscriber_id: int) -> bool:
        """Send the confirmation; False when there is nobody to send to or the address is blocked.

        Raises TransientError when the transport may succeed later (the task retries it). The only
        suppression it sends through is an earlier unsubscribe: confirming is how that is lifted.
        """
        now = self.clock()
        with session_scope(self.sessions) as session:
            row = session.get(Subscriber, subscriber_id)
            if row is None:
                return False
            if suppression_reasons(session, row.email) - {SuppressionReason.UNSUBSCRIBED}:
                log.info("confirmation for subscriber %d not sent: the address is suppressed", subscriber_id)
                return False
            email, name, locale = row.email, row.name, row.locale
            already = row.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)
            choices = describe_choices(
                [s.name for s in row.specialties],
                row.cadence,
                row.timezone,
                row.edition,
                row.send_hour,
                row.send_weekday,
                now,
                locale,
            )
        rendered = self.renderer.render_email(
            "confirm",
            {
                "confirm_url": self.confirm_url(subscriber_id, now),
                "preferences_url": self.base_url
                + "/preferences/"
                + self.tokens.make(Purpose.PREFERENCES, subscriber_id),
                "already_subscribed": already,
                "choices": choices,
                "email": email,
                "valid_days": CONFIRM_MAX_AGE.days,
            },
            locale,
        )
        message = self.composer.compose_transactional(email, name, rendered, now)
        [result] = self.transport.send([message])
        if result.accepted:
            return True
        if not result.permanent:
            raise TransientError(f"confirmation to subscriber {subscriber_id}: {result.error}")
        log.warning("confirmation to subscriber %d failed permanently: %s", subscriber_id, result.error)
        return False
