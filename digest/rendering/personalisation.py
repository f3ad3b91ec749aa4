"""Per recipient: the shared body of a variant with the recipient's values in place of its markers.

The greeting, the token links and the address differ per recipient; everything else is the variant's.
A variant is rendered and inlined once with markers in place of these values (``RECIPIENT_FIELDS``),
cut at the markers once (``MarkedText``), and each recipient's email is a join of the pieces and the
values, escaped as lxml serialises each context, so a personalised body is byte-identical to a direct
render (tests/unit/rendering/test_personalisation.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from digest.config import DEFAULT_LOCALE
from digest.i18n import translations
from digest.rendering.inlining import escape_attribute, escape_text
from digest.rendering.marked import MarkedText

RECIPIENT_FIELDS = ("greeting", "unsubscribe_url", "preferences_url", "email", "click_base", "web_url")
# URL fields only ever appear inside attributes (href), the others only in text. Each is escaped the
# way lxml serialises that context, so a personalised body is byte-identical to a direct render.
ATTRIBUTE_FIELDS = frozenset({"unsubscribe_url", "preferences_url", "click_base", "web_url"})


@dataclass(frozen=True)
class Recipient:
    """The per-subscriber parts of a message."""

    email: str
    name: str
    unsubscribe_url: str
    preferences_url: str
    click_base: str = ""  # start of this message's tracked links (digest/issues/links.py)
    web_url: str = ""  # this message's web version ("view in browser", digest/issues/web_version.py)
    locale: str = DEFAULT_LOCALE  # the language of the greeting (the variant's)

    def values(self) -> dict[str, str]:
        first = self.name.split()[0] if self.name.split() else ""
        gettext = translations(self.locale).gettext
        return {
            "greeting": gettext("Hi %(name)s,") % {"name": first} if first else gettext("Hello,"),
            "unsubscribe_url": safe_url(self.unsubscribe_url),
            "preferences_url": safe_url(self.preferences_url),
            "email": self.email,
            "click_base": self.click_base,
            "web_url": safe_url(self.web_url),
        }


@dataclass(frozen=True)
class VariantBody:
    subject: str
    preheader: str
    html: MarkedText  # inlined, cut at the recipient markers
    text: MarkedText


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    # The text and HTML bodies as quoted-printable, when the variant's pre-encoded pieces made them.
    encoded: tuple[bytes, bytes] | None = None


def personalise(body: VariantBody, recipient: Recipient) -> RenderedEmail:
    """The recipient's email from the shared body: the values put in place of the markers, escaped
    for the HTML part as lxml would have written them, and quoted-printable when the pieces allow."""
    text_values = recipient.values()
    html_values = {
        name: escape_attribute(value) if name in ATTRIBUTE_FIELDS else escape_text(value)
        for name, value in text_values.items()
    }
    text_qp = body.text.fill_quoted_printable(text_values)
    html_qp = body.html.fill_quoted_printable(html_values)
    return RenderedEmail(
        subject=body.subject,
        html=body.html.fill(html_values),
        text=body.text.fill(text_values),
        encoded=(text_qp, html_qp) if text_qp is not None and html_qp is not None else None,
    )


def safe_url(url: str) -> str:
    """Percent-encode what lxml would rewrite in an href (non-ASCII, quotes, angle brackets,
    spaces), so that a URL put in after inlining is byte-identical to one rendered through it."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")
