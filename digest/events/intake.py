"""``digest bounces serve``: the LMTP (or SMTP) listener the MTA hands bounces and abuse reports to.

Point the MTA's transport for ``DIGEST_BOUNCE_DOMAIN`` at ``DIGEST_BOUNCE_LISTEN`` (Postfix:
``transport_maps`` with ``bounces.example.org lmtp:inet:127.0.0.1:2526``). Only ``bounces+<token>``
recipients of that domain are taken; anything else is refused at RCPT, so the listener is no open
door. Each report is parsed (digest/events/inbound.py) and recorded through the same path as the
provider webhooks, in one transaction, before the 250: a crash before it leaves the report with the
MTA, which hands it over again, and events are de-duplicated by the report's Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.orm import Session as DBSession
from sqlalchemy.orm import sessionmaker

from digest.db import session_scope
from digest.events.inbound import parse_report, verp_token
from digest.events.service import EventReport, SoftBounceLimit, record_events
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import BadToken, Tokens

log = logging.getLogger(__name__)


class BounceIntake:
    """Takes one report as the MTA hands it over: its envelope recipients and its bytes."""

    def __init__(
        self,
        sessions: sessionmaker[DBSession],
        tokens: Tokens,
        domain: str,
        clock: Callable[[], datetime],
        soft: SoftBounceLimit,
    ):
        self.sessions = sessions
        self.tokens = tokens
        self.domain = domain
        self.clock = clock
        self.soft = soft

    def takes(self, recipient: str) -> bool:
        return verp_token(recipient, self.domain) is not None

    def handle(self, recipients: list[str], raw: bytes) -> EventReport:
        with session_scope(self.sessions) as session:
            email = self._subscriber_email(session, recipients)
            if email is None:  # a forged or stale return path: the report names nobody we can trust
                return EventReport()
            events = parse_report(raw, email)
            report = record_events(session, events, self.clock(), self.soft)
        log.info(
            "bounce intake: %d event(s) (%s), %d already seen",
            report.processed,
            ", ".join(f"{e.kind} {e.email}" for e in events) or "none",
            report.duplicates,
        )
        return report

    def _subscriber_email(self, session: DBSession, recipients: list[str]) -> str | None:
        """Whose message bounced, from the first VERP recipient with a valid token."""
        for recipient in recipients:
            token = verp_token(recipient, self.domain)
            if token is None:
                continue
            try:
                subscriber_id = self.tokens.read_mailbox(token)
            except BadToken:
                log.warning("bounce intake: a forged or damaged VERP token in %s", recipient)
                continue
            email = session.scalar(select(Subscriber.email).where(Subscriber.id == subscriber_id))
            if email is not None:
                return email
        return None


class _Handler:
    def __init__(self, intake: BounceIntake):
        self.intake = intake

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.intake.takes(address):
            return "550 5.1.1 not a bounce address of this list"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            self.intake.handle(list(envelope.rcpt_tos), raw)
        except Exception:  # a database outage: the MTA keeps the report and tries again
            log.exception("bounce intake: could not record a report; the MTA will hand it over again")
            return "451 4.3.0 could not record the report, try again later"
        return "250 2.0.0 recorded"


class _LMTPController(Controller):
    def factory(self) -> SMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


def listener(intake: BounceIntake, host: str, port: int, *, lmtp: bool = True) -> Controller:
    """An aiosmtpd controller (``start()`` / ``stop()``) speaking LMTP (default) or SMTP."""
    cls: Any = _LMTPController if lmtp else Controller
    return cls(_Handler(intake), hostname=host, port=port, decode_data=False)
