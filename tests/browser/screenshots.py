"""Screenshots of every email and page, subscriber and editor, at 375 and 1280 px, light and dark.

    make screenshots          # or: .venv/bin/python -m tests.browser.screenshots [--out DIR]

Builds a throw-away site (SQLite in a temporary folder, a real SMTP server on loopback, the app on a
loopback port, the shipped sample data at a fixed date), sends the digests and a campaign, then
walks the pages in Debian's Chromium (/usr/bin/chromium, or DIGEST_TEST_CHROMIUM). PNGs go to
docs/screenshots/ with an index (README.md). To keep the folder small each image is cut at
``MAX_HEIGHT`` CSS pixels and reduced to a 64-colour palette.

    .venv/bin/python -m tests.browser.screenshots --locale es   # or fr

takes the same site in another language: every reader's locale is set to it and Chromium asks for it
(Accept-Language, which the editor's pages follow), plus the forms with mistakes in them (sign-up,
preference centre, compose, a subscriber import with bad rows). Light only, ``<name>-es-375.png``,
indexed in README-es.md, to look for English left on a translated page.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select, update

from digest.config import DEFAULT_LOCALE, Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.demo import seed
from digest.dispatch import send_due
from digest.editors.service import EditorIn, create_editor
from digest.i18n import translations
from digest.ingest.models import Summary
from digest.issues.service import schedule_issue
from digest.ledger.models import Delivery, Issue, IssueStatus
from digest.schema import upgrade
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.wiring import build_services
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.live import loopback_settings, serving
from tests.factories import add_campaign

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")
MAX_HEIGHT = {375: 2400, 1280: 1500}
COLOURS = 64
NOW = datetime(2026, 12, 5, 7, 30, tzinfo=UTC)
EDITOR = ("editor@example.org", "a long editor password")
POSTAL = "Clinical Evidence Press, 1 Example Street, Springfield, IL 62701, USA"
# Plain-language titles for some sample summaries, as a feed would send them (patient edition).
PATIENT_TITLES = {
    "semaglutide": "A weekly injection calmed liver inflammation in fatty liver disease",
    "tavi": "A heart valve replaced through a blood vessel worked as well as surgery",
    "doacs": "Newer blood thinners were safer than warfarin for people over 80",
}


@dataclass(frozen=True)
class Shot:
    name: str  # file name stem: "<group>-<what>"
    title: str
    show: Callable[[Page], None]  # puts the thing on the page


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _link(message: EmailMessage, path: str) -> str:
    found = re.search(rf"https?://\S+/{path}/[\w.-]+", str(message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    if found is None:
        raise RuntimeError(f"no /{path}/ link in {message['Subject']!r}")
    return found.group(0)


def _post_form(url: str, path: str, data: dict[str, str], tick: tuple[str, ...] = ()) -> Callable[[Page], None]:
    """Show the answer to a form post the way a browser gets it (the page's own form, with the
    options named in ``tick`` ticked, submitted)."""

    def show(page: Page) -> None:
        page.goto(url + path)
        for field, value in data.items():
            page.locator(f"#{field}").fill(value)
        for option in tick:
            page.locator("label.option", has_text=option).first.click()
        page.locator("form[method=post] button[type=submit]").first.click()
        page.wait_for_load_state()

    return show


def build_site(tmp: Path, sink: SMTPSink, locale: str = DEFAULT_LOCALE) -> tuple[Settings, dict[str, EmailMessage]]:
    """The throw-away site, with its mail sent: returns the settings and the emails by role (every
    reader's emails and pages in ``locale``)."""
    gettext = translations(locale).gettext
    settings = loopback_settings(
        Settings(
            var_dir=tmp,
            database_url=f"sqlite:///{tmp / 'digest.db'}",
            secret_key="screenshots",
            smtp_url=sink.url,
            transport="smtp",
            broker_url=None,
            postal_address=POSTAL,
            # Every editor shot logs in afresh (a new browser context each): more than the default
            # login attempts per client and address allowed in the throttle's window.
            login_attempts_per_client=1000,
            login_attempts_per_account=1000,
            from_="Clinical evidence digest <digest@news.example.org>",
        )
    )
    now = [NOW]
    services = build_services(settings, clock=lambda: now[0])
    upgrade(services.engine)
    with session_scope(services.sessions) as s:
        seed(s, NOW)
        s.execute(update(Subscriber).values(locale=locale))
        for summary in s.scalars(select(Summary)):
            for key, title in PATIENT_TITLES.items():
                if summary.id.startswith(key):
                    summary.patient_title = title
        create_editor(s, EditorIn(EDITOR[0], EDITOR[1], "Europe/Berlin"))
    send_due(services, NOW, include_new_subscribers=True)
    emails: dict[str, EmailMessage] = {}
    for received in sink.received:
        patient = gettext("What this means for patients") in _html(received.message)
        role = "digest-patient" if patient else "digest-clinician"
        if role not in emails or len(_html(received.message)) > len(_html(emails[role])):
            emails[role] = received.message  # the fullest of each edition
    with session_scope(services.sessions) as s:
        pins = list(s.scalars(select(Summary.id).order_by(Summary.published_at.desc()).limit(1)))
        issue_id = add_campaign(
            s,
            NOW,
            subject="Winter picks from the editors",
            intro="Three trials **worth your time** this week. See [our methods](https://example.org/methods).",
            pinned=pins,
        )
        schedule_issue(s, issue_id, NOW.replace(tzinfo=None) + timedelta(minutes=1), "UTC", NOW)
    now[0] = NOW + timedelta(minutes=2)
    sink.clear()
    from workers import app as worker_app
    from workers import tasks

    worker_app.configure(settings)
    tasks.use_services(services)
    tasks.dispatch_due()
    campaign = [r.message for r in sink.received if r.message["Subject"] == "Winter picks from the editors"]
    emails["campaign"] = campaign[0]
    sink.clear()
    services.queue.send_confirmation(_a_pending_reader(services, locale))
    emails["confirmation"] = sink.messages[0]
    sink.clear()
    _notices_and_account_mail(services, sink, emails, now, locale)
    tasks.use_services(None)
    services.close()
    return settings, emails


# The three newest sample summaries (in the digests just sent), by role: "corrected" (its key takeaway
# corrected and the notice sent: two versions in its history), "pending" (corrected, waiting for an
# editor on the corrections screen) and "alerted" (a safety alert about it).
CHOSEN: dict[str, str] = {}


def _notices_and_account_mail(  # type: ignore[no-untyped-def]
    services, sink: SMTPSink, emails: dict[str, EmailMessage], now: list[datetime], locale: str = DEFAULT_LOCALE
) -> None:
    """A correction approved and sent, a safety alert, a correction left pending, a draft campaign,
    an editor invitation and a password reset: the emails by role into ``emails``."""
    from digest.corrections.alerts import send_alert
    from digest.corrections.review import review_versions
    from digest.corrections.service import approve, pending_corrections
    from digest.demo import sample_records
    from digest.editors.links import Purpose as LinkPurpose
    from digest.editors.service import get_editor, invite_editor
    from digest.ingest.service import import_summaries
    from digest.web.account_mail import send_account_email
    from digest.web.accounts import password_links

    newest = sorted((r for _, r in sample_records(NOW)), key=lambda r: str(r["published_at"]), reverse=True)
    records = {str(r["id"]): r for r in newest}
    CHOSEN.update(zip(("corrected", "pending", "alerted"), (str(r["id"]) for r in newest), strict=False))
    CORRECTED, PENDING, ALERTED = CHOSEN["corrected"], CHOSEN["pending"], CHOSEN["alerted"]
    gettext = translations(locale).gettext
    corrected_subject, alert_subject = (
        gettext(subject) % {"title": ""} for subject in ("Correction: %(title)s", "Safety alert: %(title)s")
    )
    wrong = gettext(
        "We got something wrong in a summary we sent you. Here is the corrected version, in plain words."
    ).split(".")[0]
    now[0] = NOW + timedelta(hours=1)
    with session_scope(services.sessions) as s:
        record = records[CORRECTED]
        changed = {
            **record,
            "key_takeaway": str(record["key_takeaway"]) + " (An earlier version overstated this result.)",
            "status": "corrected",
            "correction_note": "The key takeaway overstated the result; it now says how uncertain it is.",
        }
        import_summaries(s, [(1, changed)])
        review_versions(s, now[0])
        for correction in pending_corrections(s):
            approve(s, correction.id, by=EDITOR[0], now=now[0])
    send_due(services, now[0])
    for received in sink.received:
        if str(received.message["Subject"]).startswith(corrected_subject):
            role = "correction-patient" if wrong in _html(received.message) else "correction"
            emails.setdefault(role, received.message)
    sink.clear()
    with session_scope(services.sessions) as s:
        summary = s.get(Summary, ALERTED)
        assert summary is not None
        send_alert(
            s, summary, "The regulator asks prescribers to check for gallbladder disease before each dose.", now[0]
        )
    send_due(services, now[0])
    emails["alert"] = next(r.message for r in sink.received if str(r.message["Subject"]).startswith(alert_subject))
    sink.clear()
    with session_scope(services.sessions) as s:
        record = records[PENDING]
        import_summaries(
            s,
            [
                (
                    1,
                    {
                        **record,
                        "outcomes": [],
                        "status": "corrected",
                        "correction_note": "The outcome table was withdrawn.",
                    },
                )
            ],
        )
        review_versions(s, now[0])
        add_campaign(
            s, NOW, subject="Spring picks (draft)", intro="Two trials to read before clinic.", pinned=[ALERTED]
        )
        invited = invite_editor(s, "new.editor@example.org", "Europe/Paris")
        links = password_links(services)
        send_account_email(
            services.composer,
            services.transport,
            LinkPurpose.INVITE,
            invited.email,
            links.url(LinkPurpose.INVITE, invited),
            now[0],
            invited_by=EDITOR[0],
            locale=locale,
        )
        me = get_editor(s, EDITOR[0])
        send_account_email(
            services.composer,
            services.transport,
            LinkPurpose.RESET,
            me.email,
            links.url(LinkPurpose.RESET, me),
            now[0],
            locale=locale,
        )
    emails["invite"], emails["reset"] = sink.messages[-2:]
    sink.clear()


def _a_pending_reader(services, locale: str = DEFAULT_LOCALE) -> int:  # type: ignore[no-untyped-def]
    """A new sign-up (weekly, Berlin) waiting for its confirmation."""
    from digest.subscribers.schema import SubscriberIn
    from digest.subscribers.signup import request_signup

    data = SubscriberIn(
        email="new.reader@example.org",
        specialties=["cardiology", "oncology"],
        cadence="weekly",
        timezone="Europe/Berlin",
        send_weekday=0,
        send_hour=7,
        locale=locale,
    )
    with session_scope(services.sessions) as s:
        subscriber_id = request_signup(s, data, "127.0.0.1", NOW, per_address_per_day=10)
    assert subscriber_id is not None
    return subscriber_id


def shots(url: str, settings: Settings, emails: dict[str, EmailMessage], locale: str = DEFAULT_LOCALE) -> list[Shot]:
    gettext = translations(locale).gettext
    services = build_services(settings, clock=lambda: NOW)
    with session_scope(services.sessions) as s:
        reader = s.scalars(select(Subscriber).where(Subscriber.status == "active").order_by(Subscriber.id)).first()
        assert reader is not None
        rid = reader.id
        first_summary = CHOSEN["corrected"]
        period = s.scalars(select(Delivery.period_key).where(Delivery.period_key.is_not(None))).first()
        # One reader to erase per width and scheme (each shot erases one; the link is spent after).
        erase_ids = list(
            s.scalars(
                select(Subscriber.id).where(Subscriber.status == "active").order_by(Subscriber.id.desc()).limit(4)
            )
        )
        assert rid not in erase_ids
        draft = s.scalars(select(Issue.id).where(Issue.status == IssueStatus.DRAFT)).first()
        sent = s.scalars(select(Issue.id).where(Issue.subject == "Winter picks from the editors")).first()
    prefs = f"{url}/preferences/{services.tokens.make(Purpose.PREFERENCES, rid)}"
    erase_prefs = [f"{url}/preferences/{services.tokens.make(Purpose.PREFERENCES, i)}" for i in erase_ids]
    unsub = f"{url}/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, rid)}"
    services.close()

    def goto(target: str) -> Callable[[Page], None]:
        return lambda page: page.goto(target if target.startswith("http") else url + target) and None

    def content(message: EmailMessage) -> Callable[[Page], None]:
        return lambda page: page.set_content(_html(message))

    def unsubscribed(page: Page) -> None:
        page.goto(unsub)
        button = page.get_by_role("button", name=gettext("Unsubscribe"))
        if button.count():
            button.click()
            page.wait_for_load_state()

    def editor(path: str) -> Callable[[Page], None]:
        def show(page: Page) -> None:
            page.goto(url + "/editor/login")
            page.locator("input[name=email]").fill(EDITOR[0])
            page.locator("input[name=password]").fill(EDITOR[1])
            with page.expect_navigation():  # logged in (the cookie set) before the next page is asked for
                page.locator("form button[type=submit]").first.click()
            page.goto(url + path)

        return show

    confirmation = emails["confirmation"]
    invite = emails["invite"]

    def erased(page: Page) -> None:
        page.goto(f"{erase_prefs.pop()}/erase")
        page.locator("label.option").first.click()
        page.locator("form[method=post] button[type=submit]").first.click()
        page.wait_for_load_state()

    return [
        Shot("email-confirmation", "Confirmation email", content(confirmation)),
        Shot("email-digest-clinician", "Digest, clinician edition", content(emails["digest-clinician"])),
        Shot("email-digest-patient", "Digest, patient edition", content(emails["digest-patient"])),
        Shot("email-campaign", "Editor's campaign", content(emails["campaign"])),
        Shot("email-correction", "Correction notice (clinician)", content(emails["correction"])),
        *(
            [Shot("email-correction-patient", "Correction notice (patient)", content(emails["correction-patient"]))]
            if "correction-patient" in emails
            else []
        ),
        Shot("email-safety-alert", "Safety alert", content(emails["alert"])),
        Shot("email-editor-invitation", "Editor invitation", content(invite)),
        Shot("email-editor-reset", "Editor password reset", content(emails["reset"])),
        Shot("page-signup", "Sign-up form", goto("/")),
        Shot("page-signup-errors", "Sign-up form with mistakes", _post_form(url, "/", {"timezone": "Mars/Base"})),
        Shot(
            "page-check-inbox",
            "Check your inbox",
            _post_form(
                url, "/", {"email": "someone@example.org", "timezone": "Europe/Paris"}, (gettext("Cardiology"),)
            ),
        ),
        Shot("page-confirmed", "You are subscribed", goto(_link(confirmation, "confirm"))),
        Shot("page-preferences", "Preference centre", goto(prefs)),
        # (before the reader unsubscribes below)
        *(mistakes(url, prefs, editor, gettext) if locale != DEFAULT_LOCALE else []),
        Shot("page-web-version", "Web version of a digest", goto(_link(emails["digest-clinician"], "web"))),
        Shot("page-archive", "Past issues", goto("/issues")),
        Shot("page-summary-history", "A summary and its versions", goto(f"/summaries/{first_summary}")),
        Shot("page-erase", "Erase your data", goto(f"{prefs}/erase")),
        Shot("page-invalid-link", "Invalid link", goto("/unsubscribe/not-a-token")),
        Shot("page-unsubscribe", "Unsubscribe", goto(unsub)),
        Shot("page-unsubscribed", "You are unsubscribed", unsubscribed),
        Shot("editor-login", "Editor login", goto("/editor/login")),
        Shot("editor-dashboard", "Editor dashboard: digest runs and campaigns (/editor)", editor("/editor")),
        Shot("editor-campaign", "Editor: a campaign, its preview and counts", editor(f"/editor/issues/{draft}")),
        Shot(
            "editor-confirm-send-now",
            "Editor: confirm send now (how many people)",
            editor(f"/editor/issues/{draft}/confirm/send-now"),
        ),
        Shot("editor-campaign-figures", "Editor: a sent campaign's figures", editor(f"/editor/issues/{sent}/figures")),
        Shot("editor-new-issue", "Editor: new issue", editor("/editor/issues/new")),
        Shot("editor-subscribers", "Editor: subscribers", editor("/editor/subscribers")),
        Shot("editor-digest-run", "Editor: a digest run", editor(f"/editor/runs/{period}")),
        Shot(
            "editor-corrections",
            "Editor: corrections and alerts (a pending correction, readers per edition)",
            editor("/editor/corrections"),
        ),
        Shot("editor-integrations", "Editor: integrations", editor("/editor/integrations")),
        Shot("editor-editors", "Editor: editor accounts", editor("/editor/editors")),
        Shot("editor-password-reset", "Editor: password reset", goto("/editor/password-reset")),
        Shot(
            "editor-choose-password",
            "Editor: choose a password (invitation link)",
            goto(_link(invite, "password/invite")),
        ),
        Shot("page-not-found", "Not found", goto("/no-such-page")),
        Shot("page-erased", "Your data is erased", erased),
    ]


def mistakes(
    url: str, prefs: str, editor: Callable[[str], Callable[[Page], None]], gettext: Callable[[str], str]
) -> list[Shot]:
    """The forms with mistakes in them, for the translated runs: what each page says is wrong must
    be in the page's language too."""

    def preferences_wrong(page: Page) -> None:
        page.goto(prefs)
        page.evaluate("document.querySelectorAll('input[name=specialties]').forEach(e => { e.checked = false })")
        page.locator("#timezone").fill("Mars/Base")
        page.locator("form[method=post] button[type=submit]").first.click()
        page.wait_for_load_state()

    def compose_wrong(page: Page) -> None:
        editor("/editor/issues/new")(page)
        page.evaluate("document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))")
        page.locator("#subject").fill("   ")
        page.locator("form[action='/editor/issues'] button[type=submit]").click()
        page.wait_for_load_state()

    def import_wrong(page: Page) -> None:
        editor("/editor/subscribers")(page)
        rows = "email,specialties,cadence,timezone\nnot-an-address,cardiology,daily,UTC\n"
        rows += "ok@example.org,no-such-specialty,daily,UTC\nok2@example.org,cardiology,hourly,Mars/Base\n"
        page.locator("#file").set_input_files({"name": "readers.csv", "mimeType": "text/csv", "buffer": rows.encode()})
        page.locator("form.import button[type=submit]").first.click()
        page.wait_for_load_state()

    return [
        Shot(
            "page-signup-bad-email",
            "Sign-up form: a bad address, no specialty",
            _post_form(url, "/", {"email": "someone@@example", "timezone": "Europe/Madrid"}),
        ),
        Shot("page-preferences-errors", "Preference centre: no specialty, an unknown time zone", preferences_wrong),
        Shot("editor-compose-errors", "Editor: compose, an empty subject", compose_wrong),
        Shot("editor-subscribers-import-errors", "Editor: a subscriber import with bad rows", import_wrong),
        Shot(
            "page-summary-missing",
            "A summary that does not exist",
            lambda page: page.goto(url + "/summaries/no-such-summary") and None,
        ),
        Shot(
            "page-issue-missing",
            "An issue that does not exist",
            lambda page: page.goto(url + "/issues/999999") and None,
        ),
    ]


def take(
    browser: Browser, shot: Shot, width: int, scheme: str, out: Path, locale: str = DEFAULT_LOCALE, text: bool = False
) -> Path:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme, locale=locale)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        shot.show(page)
        height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT[width])
        variant = f"{width}-{scheme}" if locale == DEFAULT_LOCALE else f"{locale}-{width}"
        path = out / f"{shot.name}-{variant}.png"
        page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
        if text:  # the whole page's words, past the image's cut too (and the title, the alt texts)
            words = page.evaluate(
                "[document.title, document.body.innerText,"
                " ...[...document.querySelectorAll('[alt],[title],[aria-label],[placeholder]')].map("
                "e => e.getAttribute('alt') || e.getAttribute('title') || e.getAttribute('aria-label')"
                " || e.getAttribute('placeholder'))].join('\\n')"
            )
            path.with_suffix(".txt").write_text(words, encoding="utf-8")
    finally:
        context.close()
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


def write_index(out: Path, taken: list[Shot]) -> Path:
    lines = [
        "# Screenshots",
        "",
        "Every email and page at 375 and 1280 px, light and dark, taken by `make screenshots`",
        f"(tests/browser/screenshots.py; images cut at {MAX_HEIGHT[375]} / {MAX_HEIGHT[1280]} px, {COLOURS} colours).",
        "",
        "| | 375 light | 375 dark | 1280 light | 1280 dark |",
        "|---|---|---|---|---|",
    ]
    for shot in taken:
        cells = [f"[{w} {s}]({shot.name}-{w}-{s}.png)" for w in WIDTHS for s in SCHEMES]
        lines.append(f"| {shot.title} | " + " | ".join(cells) + " |")
    path = out / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_locale_index(out: Path, taken: list[Shot], locale: str) -> Path:
    lines = [
        f"# Screenshots in {locale}",
        "",
        f"The pages and emails with every reader and the browser in `{locale}`, light, taken by",
        f"`python -m tests.browser.screenshots --locale {locale}` (the English ones: README.md).",
        "",
        "| | 375 | 1280 |",
        "|---|---|---|",
    ]
    for shot in taken:
        cells = [f"[{w}]({shot.name}-{locale}-{w}.png)" for w in WIDTHS]
        lines.append(f"| {shot.title} | " + " | ".join(cells) + " |")
    path = out / f"README-{locale}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--locale", default=DEFAULT_LOCALE, help="the readers' and the browser's language")
    parser.add_argument("--only", default="", help="take only the shots whose name contains this")
    parser.add_argument("--text", action="store_true", help="also write each page's text beside its image (.txt)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    schemes = SCHEMES if args.locale == DEFAULT_LOCALE else ("light",)
    with tempfile.TemporaryDirectory() as tmp, SMTPSink() as sink:
        settings, emails = build_site(Path(tmp), sink, args.locale)
        services = build_services(settings, clock=lambda: NOW)
        with serving(services) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            taken = [s for s in shots(url, settings, emails, args.locale) if args.only in s.name]
            for shot in taken:
                for width in WIDTHS:
                    for scheme in schemes:
                        print(take(browser, shot, width, scheme, args.out, args.locale, args.text).name)
            browser.close()
        services.close()
    if args.only:
        return
    print(
        write_index(args.out, taken)
        if args.locale == DEFAULT_LOCALE
        else write_locale_index(args.out, taken, args.locale)
    )


if __name__ == "__main__":
    main()
