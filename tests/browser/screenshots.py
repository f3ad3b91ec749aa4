"""Screenshots of every email and page, subscriber and editor, at 375 and 1280 px, light and dark.

    make screenshots          # or: .venv/bin/python -m tests.browser.screenshots [--out DIR]

Builds a throw-away site (SQLite in a temporary folder, a real SMTP server on loopback, the app on a
loopback port, the shipped sample data at a fixed date), sends the digests and a campaign, then
walks the pages in Debian's Chromium (/usr/bin/chromium, or DIGEST_TEST_CHROMIUM). PNGs go to
docs/screenshots/ with an index (README.md). To keep the folder small each image is cut at
``MAX_HEIGHT`` CSS pixels and reduced to a 64-colour palette.
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
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.demo import seed
from digest.dispatch import send_due
from digest.editors.service import EditorIn, create_editor
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


def build_site(tmp: Path, sink: SMTPSink) -> tuple[Settings, dict[str, EmailMessage]]:
    """The throw-away site, with its mail sent: returns the settings and the emails by role."""
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
        for summary in s.scalars(select(Summary)):
            for key, title in PATIENT_TITLES.items():
                if summary.id.startswith(key):
                    summary.patient_title = title
        create_editor(s, EditorIn(EDITOR[0], EDITOR[1], "Europe/Berlin"))
    send_due(services, NOW, include_new_subscribers=True)
    emails: dict[str, EmailMessage] = {}
    for received in sink.received:
        role = "digest-patient" if "What this means for patients" in _html(received.message) else "digest-clinician"
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
    services.queue.send_confirmation(_a_pending_reader(services))
    emails["confirmation"] = sink.messages[0]
    sink.clear()
    _notices_and_account_mail(services, sink, emails, now)
    tasks.use_services(None)
    services.close()
    return settings, emails


# The three newest sample summaries (in the digests just sent), by role: "corrected" (its key takeaway
# corrected and the notice sent: two versions in its history), "pending" (corrected, waiting for an
# editor on the corrections screen) and "alerted" (a safety alert about it).
CHOSEN: dict[str, str] = {}


def _notices_and_account_mail(services, sink: SMTPSink, emails: dict[str, EmailMessage], now: list[datetime]) -> None:  # type: ignore[no-untyped-def]
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
        if str(received.message["Subject"]).startswith("Correction:"):
            role = "correction-patient" if "We got something wrong" in _html(received.message) else "correction"
            emails.setdefault(role, received.message)
    sink.clear()
    with session_scope(services.sessions) as s:
        summary = s.get(Summary, ALERTED)
        assert summary is not None
        send_alert(
            s, summary, "The regulator asks prescribers to check for gallbladder disease before each dose.", now[0]
        )
    send_due(services, now[0])
    emails["alert"] = next(r.message for r in sink.received if str(r.message["Subject"]).startswith("Safety alert"))
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
        )
        me = get_editor(s, EDITOR[0])
        send_account_email(
            services.composer, services.transport, LinkPurpose.RESET, me.email, links.url(LinkPurpose.RESET, me), now[0]
        )
    emails["invite"], emails["reset"] = sink.messages[-2:]
    sink.clear()


def _a_pending_reader(services) -> int:  # type: ignore[no-untyped-def]
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
    )
    with session_scope(services.sessions) as s:
        subscriber_id = request_signup(s, data, "127.0.0.1", NOW, per_address_per_day=10)
    assert subscriber_id is not None
    return subscriber_id


def shots(url: str, settings: Settings, emails: dict[str, EmailMessage]) -> list[Shot]:
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
        if page.get_by_role("button", name="Unsubscribe").count():
            page.get_by_role("button", name="Unsubscribe").click()
            page.wait_for_load_state()

    def editor(path: str) -> Callable[[Page], None]:
        def show(page: Page) -> None:
            page.goto(url + "/editor/login")
            page.locator("input[name=email]").fill(EDITOR[0])
            page.locator("input[name=password]").fill(EDITOR[1])
            page.locator("form button[type=submit]").first.click()
            page.wait_for_load_state()
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
            _post_form(url, "/", {"email": "someone@example.org", "timezone": "Europe/Paris"}, ("Cardiology",)),
        ),
        Shot("page-confirmed", "You are subscribed", goto(_link(confirmation, "confirm"))),
        Shot("page-preferences", "Preference centre", goto(prefs)),
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


def take(browser: Browser, shot: Shot, width: int, scheme: str, out: Path) -> Path:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        shot.show(page)
        height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT[width])
        path = out / f"{shot.name}-{width}-{scheme}.png"
        page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, SMTPSink() as sink:
        settings, emails = build_site(Path(tmp), sink)
        services = build_services(settings, clock=lambda: NOW)
        with serving(services) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            taken = shots(url, settings, emails)
            for shot in taken:
                for width in WIDTHS:
                    for scheme in SCHEMES:
                        print(take(browser, shot, width, scheme, args.out).name)
            browser.close()
        services.close()
    print(write_index(args.out, taken))


if __name__ == "__main__":
    main()
