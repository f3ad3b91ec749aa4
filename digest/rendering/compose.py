"""From ledger rows to OutgoingMessages: variant, personal links, headers, MIME bytes (and DKIM)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import make_msgid
from typing import Any

from digest.rendering.compiled import EmailRenderer, Variant, item_view
from digest.rendering.headers import list_id, list_unsubscribe, make_message_id, mime_bytes
from digest.rendering.message import OutgoingMessage
from digest.rendering.personalisation import Recipient, RenderedEmail
from digest.subscribers.models import Edition
from digest.subscribers.tokens import Purpose, Tokens


@dataclass(frozen=True)
class Addressee:
    subscriber_id: int
    email: str
    name: str
    edition: str
    specialties: dict[str, str]  # slug -> display name


def build_variant(
    edition: str, summaries: Sequence[Any], addressee_specialties: dict[str, str], issue: dict[str, Any]
) -> Variant:
    """The variant for one subscriber: their summaries, edition and the specialties that explain each item.

    Planning already leaves summaries without a patient section out of patient digests; this drops
    any that lost it since (an edit between planning and sending), so no item is shown half-empty.
    """
    items = []
    served: dict[str, str] = {}
    for summary in summaries:
        if edition == Edition.PATIENT and not (summary.patient_summary or "").strip():
            continue
        why = [addressee_specialties[s.slug] for s in summary.specialties if s.slug in addressee_specialties]
        served.update(
            {s.slug: addressee_specialties[s.slug] for s in summary.specialties if s.slug in addressee_specialties}
        )
        items.append(item_view(summary, why))
    specialties = tuple(name for slug, name in sorted(served.items()))
    return Variant(edition=edition, items=tuple(items), specialties=specialties, issue=issue)


class MessageComposer:
    def __init__(
        self,
        renderer: EmailRenderer,
        tokens: Tokens,
        *,
        base_url: str,
        from_header: str,
        list_name: str,
        domain: str,
        secret: str,
        sign: Callable[[bytes], bytes] | None = None,
        click_base: Callable[[int], str] | None = None,
    ):
        self.renderer = renderer
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.from_header = from_header
        self.list_id = list_id(list_name, domain)
        self.domain = domain
        self.secret = secret
        self.sign = sign
        self.click_base = click_base  # delivery id -> start of its tracked links

    def recipient(self, who: Addressee, unsubscribe_url: str | None = None) -> Recipient:
        return Recipient(
            email=who.email,
            name=who.name,
            unsubscribe_url=unsubscribe_url or self.unsubscribe_url(who.subscriber_id),
            preferences_url=f"{self.base_url}/preferences/{self.tokens.make(Purpose.PREFERENCES, who.subscriber_id)}",
        )

    def unsubscribe_url(self, subscriber_id: int) -> str:
        return f"{self.base_url}/unsubscribe/{self.tokens.make(Purpose.UNSUBSCRIBE, subscriber_id)}"

    def compose(
        self, delivery_id: int, issue_id: int, who: Addressee, variant: Variant, date: datetime
    ) -> OutgoingMessage:
        unsubscribe_url = self.unsubscribe_url(who.subscriber_id)
        recipient = self.recipient(who, unsubscribe_url)
        if self.click_base is not None and variant.issue.get("track_clicks"):
            recipient = replace(recipient, click_base=self.click_base(delivery_id))
        rendered = self.renderer.render(variant, recipient)
        mailto = f"unsubscribe+{self.tokens.mailbox(who.subscriber_id)}@{self.domain}"
        headers = (("List-Id", self.list_id), *list_unsubscribe(unsubscribe_url, mailto))
        msg = OutgoingMessage(
            delivery_id=delivery_id,
            message_id=make_message_id(issue_id, who.subscriber_id, self.domain, self.secret),
            from_header=self.from_header,
            to_email=who.email,
            to_name=who.name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            headers=headers,
        )
        return self._finish(msg, date, rendered.encoded)

    def compose_transactional(
        self, to_email: str, to_name: str, rendered: RenderedEmail, date: datetime
    ) -> OutgoingMessage:
        """A one-off message (a sign-up confirmation): no list headers, a fresh Message-ID, signed too."""
        msg = OutgoingMessage(
            delivery_id=0,
            message_id=make_msgid("digest", domain=self.domain),
            from_header=self.from_header,
            to_email=to_email,
            to_name=to_name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
        )
        return self._finish(msg, date)

    def _finish(
        self, msg: OutgoingMessage, date: datetime, bodies: tuple[bytes, bytes] | None = None
    ) -> OutgoingMessage:
        """Assemble the wire bytes (from the bodies already encoded, if given), DKIM-signed when a
        signer is configured (its header lines, folded, start with a letter or a space: the bytes
        stay free of line-leading dots)."""
        raw = mime_bytes(msg, date, bodies)
        if self.sign is not None:
            raw = self.sign(raw)
        return OutgoingMessage(**{**msg.__dict__, "raw": raw, "raw_dot_free": True})
