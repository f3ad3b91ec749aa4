"""The account emails an editor gets: an invitation to the dashboard and a password-reset link.

Plain transactional messages (no List-Id or unsubscribe: they are no newsletter), sent at once
through the configured transport and signed like every other message when DKIM is configured.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from digest.config import DEFAULT_LOCALE
from digest.delivery.transport import Transport
from digest.editors.links import VALID_FOR, Purpose
from digest.errors import Explained
from digest.i18n import N_, translations
from digest.rendering.compose import MessageComposer
from digest.rendering.message import OutgoingMessage
from digest.rendering.personalisation import RenderedEmail


class AccountMailFailed(Explained):
    """The transport refused the message; the message says why."""


def _texts(purpose: Purpose, list_name: str, url: str, invited_by: str, locale: str) -> tuple[str, str]:
    t = translations(locale)
    hours = int(VALID_FOR[purpose].total_seconds() // 3600)
    if hours >= 48:
        valid = t.ngettext("%(count)s day", "%(count)s days", hours // 24) % {"count": hours // 24}
    else:
        valid = t.ngettext("%(count)s hour", "%(count)s hours", hours) % {"count": hours}
    names = {"list_name": list_name, "invited_by": invited_by}
    if purpose == Purpose.INVITE:
        subject = t.gettext("You are invited to edit %(list_name)s") % names
        lead = (
            t.gettext(
                "%(invited_by)s invited you to the editor dashboard of %(list_name)s. Choose your password to start:"
            )
            % names
        )
    else:
        subject = t.gettext("Reset your %(list_name)s editor password") % names
        lead = t.gettext("Someone (we hope you) asked to reset your editor password. Choose a new one here:")
    tail = t.gettext(
        "The link works once, for %(valid)s. If you did not expect this email, ignore it: nothing changes."
    ) % {"valid": valid}
    return subject, f"{lead}\n\n{url}\n\n{tail}\n"


def send_account_email(
    composer: MessageComposer,
    transport: Transport,
    purpose: Purpose,
    to: str,
    url: str,
    now: datetime,
    *,
    invited_by: str = "",
    locale: str = DEFAULT_LOCALE,
) -> OutgoingMessage:
    """Send the account email in ``locale`` (the language of the page it was asked from)."""
    subject, text = _texts(purpose, composer.renderer.list_name, url, invited_by, locale)
    lead, _, rest = text.partition("\n\n")
    tail = rest.split("\n\n", 1)[-1].strip()
    button = translations(locale).gettext("Choose your password")
    html = (
        f'<!DOCTYPE html><html lang="{locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family: system-ui, sans-serif; font-size: 16px; line-height: 1.5; padding: 16px;">'
        f"<p>{escape(lead)}</p>"
        f'<p><a href="{escape(url)}" style="display: inline-block; padding: 12px 20px; background: #0b5a74; '
        f'color: #ffffff; border-radius: 4px; font-weight: 600; text-decoration: none;">{escape(button)}</a></p>'
        f'<p style="word-break: break-all; font-size: 14px;">{escape(url)}</p>'
        f"<p>{escape(tail)}</p></body></html>"
    )
    msg = composer.compose_transactional(to, "", RenderedEmail(subject=subject, html=html, text=text), now)
    (result,) = transport.send([msg])
    if not result.accepted:
        raise AccountMailFailed(N_("the email to %(to)s was not accepted: %(error)s"), to=to, error=result.error)
    return msg
