"""From ledger rows to OutgoingMessages: variant, personal links, headers, MIME bytes (and DKIM).

``MessageComposer`` is the one composer of every email the project sends (digests, campaigns, test
sends, confirmations); its MIME bytes come from ``headers.mime_bytes``, the one MIME writer, and are
only written (and signed) when the transport sends raw MIME.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from digest.config import DEFAULT_LOCALE
from digest.ingest.specialties import specialty_name
from digest.rendering.compiled import EmailRenderer, Variant, item_view
from digest.rendering.headers import list_id, list_unsubscribe, make_message_id, mime_bytes, random_message_id
from digest.rendering.message import OutgoingMessage
from digest.rendering.notices import localize_issue
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
    relevance: str = ""  # their own selection filters in words (digest/subscribers/relevance.py)
    locale: str = DEFAULT_LOCALE  # the language of their emails (digest/i18n.py)


def build_variant(
    edition: str,
    summaries: Sequence[Any],
    addressee_specialties: dict[str, str],
    issue: dict[str, Any],
    *,
    relevance: str = "",
    locale: str = DEFAULT_LOCALE,
) -> Variant:
    """The variant for one subscriber: their summaries, edition and the specialties that explain each
    item, with the reader's own filters (``relevance``) added to each item's "why" line when set,
    in the reader's ``locale`` (the summaries themselves stay in the language they came in).

    Planning already leaves summaries without a patient section out of patient digests; this drops
    any that lost it since (an edit between planning and sending), so no item is shown half-empty.
    """
    items = []
    served: dict[str, str] = {}
    addressee_specialties = {slug: specialty_name(name, locale) for slug, name in addressee_specialties.items()}
    if summaries:
        first = summaries[0]
        issue = localize_issue(issue, first.title, first.status == "retracted", locale)
    # A correction notice says what changed in the note the editor approved (perhaps rewritten from
    # the record's correction_note): the summary under it marks itself corrected with that note too,
    # so a reader never sees the wording the editor replaced.
    notice = issue.get("notice") or {}
    notice_note = notice.get("note") if notice.get("kind") == "correction" else None
    for summary in summaries:
        if edition == Edition.PATIENT and not (summary.patient_summary or "").strip():
            continue
        why = [addressee_specialties[s.slug] for s in summary.specialties if s.slug in addressee_specialties]
        served.update(
            {s.slug: addressee_specialties[s.slug] for s in summary.specialties if s.slug in addressee_specialties}
        )
        item = item_view(summary, why)
        if notice_note is not None and item["status"] != "published":
            item["correction_note"] = notice_note  # the wording the editor approved, not the record's
        if relevance:
            item["relevance"] = relevance
        items.append(item)
    specialties = tuple(name for slug, name in sorted(served.items()))
    return Variant(edition=edition, items=tuple(items), specialties=specialties, issue=issue, locale=locale)


FEEDBACK_SENDER = "digest"  # the SenderId field of Feedback-ID, stable across every message


def feedback_id(*identifiers: str) -> str:
    """``Feedback-ID: a:b:c:SenderId`` (Gmail's feedback loop groups complaints by these fields);
    colons inside a field would shift the others, so they are dropped."""
    return ":".join(part.replace(":", "") for part in (*identifiers, FEEDBACK_SENDER))


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
        raw: bool = True,
        return_path: Callable[[int], str] | None = None,
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
        self.raw = raw  # False for transports that take fields, not MIME (HTTP APIs)
        self.return_path = return_path  # subscriber id -> VERP bounce address (DIGEST_BOUNCE_DOMAIN)

    def recipient(self, who: Addressee, unsubscribe_url: str | None = None) -> Recipient:
        return Recipient(
            email=who.email,
            name=who.name,
            unsubscribe_url=unsubscribe_url or self.unsubscribe_url(who.subscriber_id),
            preferences_url=f"{self.base_url}/preferences/{self.tokens.make(Purpose.PREFERENCES, who.subscriber_id)}",
            locale=who.locale,
        )

    def unsubscribe_url(self, subscriber_id: int) -> str:
        return f"{self.base_url}/unsubscribe/{self.tokens.make(Purpose.UNSUBSCRIBE, subscriber_id)}"

    def delivery_recipient(self, delivery_id: int, who: Addressee, variant: Variant) -> Recipient:
        """The recipient values of one delivery's message: its links, tracked-link base and web
        version (the web version renders with these too, so its links are the message's)."""
        recipient = replace(self.recipient(who), web_url=self.web_version_url(delivery_id))
        if self.click_base is not None and variant.issue.get("track_clicks"):
            recipient = replace(recipient, click_base=self.click_base(delivery_id))
        return recipient

    def web_version_url(self, delivery_id: int) -> str:
        return f"{self.base_url}/web/{self.tokens.make(Purpose.WEB_VERSION, delivery_id)}"

    def compose(
        self, delivery_id: int, issue_id: int, who: Addressee, variant: Variant, date: datetime
    ) -> OutgoingMessage:
        recipient = self.delivery_recipient(delivery_id, who, variant)
        unsubscribe_url = recipient.unsubscribe_url
        rendered = self.renderer.render(variant, recipient)
        mailto = f"unsubscribe+{self.tokens.mailbox(who.subscriber_id)}@{self.domain}"
        kind = "campaign" if variant.issue.get("subject") else "digest"
        headers = (
            ("List-Id", self.list_id),
            ("Feedback-ID", feedback_id(str(issue_id), variant.edition, kind)),
            *list_unsubscribe(unsubscribe_url, mailto),
        )
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
            return_path=self.return_path(who.subscriber_id) if self.return_path is not None else None,
        )
        return self._finish(msg, date, rendered.encoded)

    def compose_transactional(
        self,
        to_email: str,
        to_name: str,
        rendered: RenderedEmail,
        date: datetime,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        id_prefix: str = "digest",
    ) -> OutgoingMessage:
        """A one-off message (a sign-up confirmation, a test send): a fresh Message-ID, signed too,
        with the given extra headers only."""
        msg = OutgoingMessage(
            delivery_id=0,
            message_id=random_message_id(self.domain, id_prefix),
            from_header=self.from_header,
            to_email=to_email,
            to_name=to_name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            headers=(("Feedback-ID", feedback_id("transactional", "", id_prefix)), *headers),
        )
        return self._finish(msg, date, rendered.encoded)

    def _finish(
        self, msg: OutgoingMessage, date: datetime, bodies: tuple[bytes, bytes] | None = None
    ) -> OutgoingMessage:
        """Assemble the wire bytes (from the bodies already encoded, if given), DKIM-signed when a
        signer is configured, for a transport that sends them; the others get the fields alone."""
        if not self.raw:
            return msg
        raw: bytes = mime_bytes(msg, date, bodies)
        if self.sign is not None:
            raw = self.sign(raw)
        return replace(msg, raw=raw)
