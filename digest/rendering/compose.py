"""From ledger rows to OutgoingMessages: variant, personal links, headers, MIME bytes (and DKIM)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.rendering.compiled import EmailRenderer, Recipient, Variant, item_view
from digest.rendering.headers import list_id, list_unsubscribe, make_message_id, mime_bytes
from digest.rendering.message import OutgoingMessage
from digest.subscribers.tokens import Purpose, Tokens


@dataclass(frozen=True)
class Addressee:
    subscriber_id: int
    email: str
    name: str
    edition: str
    specialties: dict[str, str]  # slug -> display name


def build_variant(edition: str, summaries: Sequence[Any], addressee_specialties: dict[str, str], issue: dict[str, Any]) -> Variant:
    """The variant for one subscriber: their summaries, edition and the specialties that explain each item."""
    items = []
    served: dict[str, str] = {}
    for summary in summaries:
        why = [addressee_specialties[s.slug] for s in summary.specialties if s.slug in addressee_specialties]
        served.update({s.slug: addressee_specialties[s.slug] for s in summary.specialties if s.slug in addressee_specialties})
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
    ):
        self.renderer = renderer
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")
        self.from_header = from_header
        self.list_id = list_id(list_name, domain)
        self.domain = domain
        self.secret = secret
        self.sign = sign

    def recipient(self, who: Addressee) -> Recipient:
        return Recipient(
            email=who.email,
            name=who.name,
            unsubscribe_url=self.unsubscribe_url(who.subscriber_id),
            preferences_url=f"{self.base_url}/preferences/{self.tokens.make(Purpose.PREFERENCES, who.subscriber_id)}",
        )

    def unsubscribe_url(self, subscriber_id: int) -> str:
        return f"{self.base_url}/unsubscribe/{self.tokens.make(Purpose.UNSUBSCRIBE, subscriber_id)}"

    def compose(self, delivery_id: int, issue_id: int, who: Addressee, variant: Variant, date: datetime) -> OutgoingMessage:
        rendered = self.renderer.render(variant, self.recipient(who))
        mailto = f"unsubscribe+{self.tokens.mailbox(who.subscriber_id)}@{self.domain}"
        headers = (("List-Id", self.list_id), *list_unsubscribe(self.unsubscribe_url(who.subscriber_id), mailto))
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
        raw = mime_bytes(msg, date)
        if self.sign is not None:
            raw = self.sign(raw)
        return OutgoingMessage(**{**msg.__dict__, "raw": raw})
