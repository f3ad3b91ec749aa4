"""Headers every digest carries, and the MIME assembly that makes header injection impossible.

Every user-supplied value that reaches a header (names, subjects, titles) goes through
``one_line``; the ``email`` package's policy then refuses any CR or LF that slipped through.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from datetime import datetime

from digest.rendering.message import OutgoingMessage


def one_line(value: str, limit: int = 300) -> str:
    """Collapse all whitespace (CR, LF, tabs, Unicode line separators) to single spaces."""
    return " ".join(value.split())[:limit]


def make_message_id(issue_id: int, subscriber_id: int, domain: str, secret: str) -> str:
    """Stable per (issue, subscriber): a resend after a lost commit carries the same Message-ID,
    so receiving systems that de-duplicate by it show one message."""
    mac = hmac.new(secret.encode(), f"msgid:{issue_id}:{subscriber_id}".encode(), hashlib.sha256).hexdigest()[:12]
    return f"<digest.{issue_id}.{subscriber_id}.{mac}@{domain}>"


def list_id(list_name: str, domain: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    return f"{one_line(list_name)} <{slug}.{domain}>"


def list_unsubscribe(https_url: str, mailto_address: str) -> tuple[tuple[str, str], ...]:
    """RFC 2369 + RFC 8058 headers: the HTTPS one-click URL first, then the mailto fallback."""
    return (
        ("List-Unsubscribe", f"<{https_url}>, <mailto:{mailto_address}?subject=unsubscribe>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


# Long header lines are allowed up to RFC 5322's 998 characters: folding a long URL token would make
# the email package fall back to RFC 2047 encoded-words, which breaks List-Unsubscribe.
WIRE_POLICY = SMTP.clone(max_line_length=998)


def build_mime(msg: OutgoingMessage, date: datetime) -> EmailMessage:
    """multipart/alternative with the plain-text part first and the HTML part last (preferred)."""
    mime = EmailMessage(policy=WIRE_POLICY)
    from_name, from_addr = parseaddr(msg.from_header)
    mime["From"] = formataddr((one_line(from_name), from_addr))
    mime["To"] = Address(display_name=one_line(msg.to_name), addr_spec=msg.to_email)
    mime["Subject"] = one_line(msg.subject, 998)
    mime["Date"] = format_datetime(date)
    mime["Message-ID"] = msg.message_id
    for name, value in msg.headers:
        mime[name] = one_line(value, 2000)
    mime.set_content(msg.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    mime.add_alternative(msg.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mime
