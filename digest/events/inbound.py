"""Bounces and complaints from your own MTA: RFC 3464 delivery status notifications and RFC 5965
abuse reports (ARF), read with the standard library's ``email`` package.

Messages go out with a VERP return path, ``bounces+<token>@DIGEST_BOUNCE_DOMAIN`` (the token names
the subscriber, with a MAC, as the ``List-Unsubscribe`` mailto does), so a bounce comes back to an
address that says whose message it was, even when the report quotes nothing of the original. The
MTA hands what arrives for that domain to ``digest bounces serve`` (LMTP or SMTP on loopback).
Each report becomes provider-neutral ``DeliveryEvent``s (provider ``mta``) recorded by
``digest.events.service.record_events``, the same path as the providers' webhooks:

- a DSN with ``Action: failed`` and a 5.1.x or 5.2.1 status: a hard bounce (suppressed at once);
- any other failed status (mailbox full, 4.x.x given up, policy): a soft bounce, counted; the
  address is suppressed once it has ``DIGEST_SOFT_BOUNCE_LIMIT`` of them within
  ``DIGEST_SOFT_BOUNCE_DAYS``;
- ``Action: delayed`` / ``delivered`` / ``relayed``: nothing (the MTA is still trying, or it worked);
- an ARF report: a complaint (suppressed, and the subscriber unsubscribed).
"""

from __future__ import annotations

import hashlib
import logging
import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser

from digest.events.delivery_event import DeliveryEvent, EventKind

log = logging.getLogger(__name__)

PROVIDER = "mta"
BOUNCE_PREFIX = "bounces"
_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")


def verp_address(token: str, domain: str) -> str:
    """The return path that brings a bounce back to digest: ``bounces+<token>@<domain>``."""
    return f"{BOUNCE_PREFIX}+{token}@{domain}"


def verp_token(recipient: str, domain: str) -> str | None:
    """The token of a ``bounces+<token>@<domain>`` recipient (any case), else None."""
    local, _, host = recipient.strip().strip("<>").rpartition("@")
    prefix, plus, token = local.partition("+")
    if plus and prefix.lower() == BOUNCE_PREFIX and host.lower() == domain.lower() and token:
        return token.lower()
    return None


def parse_report(raw: bytes, recipient_email: str) -> list[DeliveryEvent]:
    """The events in one report handed over by the MTA. ``recipient_email``: whose message it was,
    from the VERP token. The addresses the report itself names are not trusted: anyone can mail a
    made-up DSN to the bounce domain, but only the MAC in the return path says whose message it was."""
    report = message_from_bytes(raw, policy=policy.default)
    assert isinstance(report, EmailMessage)
    kind = report.get_content_type() == "multipart/report" and report.get_param("report-type")
    report_id = str(report.get("Message-ID") or "") or "sha256:" + hashlib.sha256(raw).hexdigest()
    original = _original_message_id(report)
    if kind == "delivery-status":
        return _dsn_events(report, report_id, original, recipient_email)
    if kind == "feedback-report":
        return _arf_events(report, report_id, original, recipient_email)
    log.info("bounce intake: %s is not a DSN or ARF report; ignored", report_id)
    return []


def _dsn_events(report: EmailMessage, report_id: str, original: str | None, email: str) -> list[DeliveryEvent]:
    part = next((p for p in report.walk() if p.get_content_type() == "message/delivery-status"), None)
    if part is None:
        return []
    events = []
    for n, fields in enumerate(_status_groups(part)[1:]):  # the first group is per message, the rest per recipient
        action = fields.get("action", "").strip().lower()
        if action != "failed":
            continue
        status = fields.get("status", "").strip()
        match = _STATUS.match(status)
        hard = (
            match is not None and match.group(1) == "5" and (match.group(2) == "1" or match.group(2, 3) == ("2", "1"))
        )
        detail = " ".join(x for x in (status, fields.get("diagnostic-code", "").strip()) if x)
        events.append(
            DeliveryEvent(
                provider=PROVIDER,
                event_id=f"{report_id}#{n}",
                kind=EventKind.HARD_BOUNCE if hard else EventKind.SOFT_BOUNCE,
                email=email.lower(),
                provider_message_ids=(original,) if original else (),
                detail=detail,
            )
        )
    return events


def _arf_events(report: EmailMessage, report_id: str, original: str | None, email: str) -> list[DeliveryEvent]:
    part = next((p for p in report.walk() if p.get_content_type() == "message/feedback-report"), None)
    groups = _status_groups(part) if part is not None else []
    fields = groups[0] if groups else {}
    feedback = fields.get("feedback-type", "abuse").strip().lower()
    return [
        DeliveryEvent(
            provider=PROVIDER,
            event_id=report_id,
            kind=EventKind.COMPLAINT,
            email=email.lower(),
            provider_message_ids=(original,) if original else (),
            detail=f"ARF {feedback} report from {fields.get('reporting-mta', '').strip() or 'a mailbox provider'}",
        )
    ]


def _status_groups(part: Message) -> list[dict[str, str]]:
    """The header groups of a message/delivery-status or message/feedback-report part, lower-case
    names. The email package parses the groups of a delivery-status part as sub-messages; a
    feedback-report part (or a delivery-status one it left as text) is parsed here, blank line by
    blank line."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [{k.lower(): str(v) for k, v in group.items()} for group in payload if isinstance(group, Message)]
    if isinstance(payload, str):
        text = payload
    else:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    groups = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        headers = BytesHeaderParser().parsebytes(block.encode() + b"\n\n")
        groups.append({k.lower(): str(v) for k, v in headers.items()})
    return groups


def _original_message_id(report: EmailMessage) -> str | None:
    """The Message-ID of the message the report is about (its returned copy or headers)."""
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) else inner
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return str(inner["Message-ID"]).strip()
        if content_type in ("text/rfc822-headers", "message/global-headers"):
            body = part.get_payload(decode=True)
            found = BytesHeaderParser().parsebytes(body).get("Message-ID") if isinstance(body, bytes) else None
            if found:
                return str(found).strip()
    return None
