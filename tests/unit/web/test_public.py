"""The public pages through the HTTP app: sign-up limits, preferences, and RFC 8058 one-click unsubscribe."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import SignupAttempt, Subscriber, SubscriberStatus, Suppression, SuppressionReason
from digest.subscribers.suppression import suppress
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.factories import add_subscriber

SIGNUP = {
    "email": "new@example.org",
    "specialties": ["cardiology", "oncology"],
    "cadence": "weekly",
    "timezone": "Europe/Berlin",
}


def _subscriber(services: Services, email: str = "reader@example.org") -> int:
    with session_scope(services.sessions) as s:
        return add_subscriber(s, email, ["cardiology"]).id


def _row(services: Services, subscriber_id: int) -> Subscriber:
    with session_scope(services.sessions) as s:
        row = s.get(Subscriber, subscriber_id)
        assert row is not None
        s.expunge(row)
        return row


def _suppressions(services: Services) -> dict[str, str]:
    with session_scope(services.sessions) as s:
        return {r.value: r.reason for r in s.scalars(select(Suppression))}


# -- one-click unsubscribe ----------------------------------------------------------------------


def test_get_unsubscribe_shows_one_button_and_changes_nothing(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    token = services.tokens.make(Purpose.UNSUBSCRIBE, sid)
    response = web.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    assert response.text.count("<button") == 1 and 'method="post"' in response.text
    assert _row(services, sid).status == SubscriberStatus.ACTIVE
    assert _suppressions(services) == {}


def test_one_click_post_urlencoded_unsubscribes_and_repeats_harmlessly(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    url = f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}"
    for _ in range(2):
        response = web.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert "location" not in response.headers and "set-cookie" not in response.headers
        assert "You are unsubscribed" in response.text
    row = _row(services, sid)
    assert row.status == SubscriberStatus.UNSUBSCRIBED and row.unsubscribed_at is not None
    assert _suppressions(services) == {"reader@example.org": SuppressionReason.UNSUBSCRIBED}


def test_one_click_post_multipart_unsubscribes(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    url = f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}"
    response = web.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200 and "location" not in response.headers
    assert _row(services, sid).status == SubscriberStatus.UNSUBSCRIBED


def test_post_without_body_also_unsubscribes(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    response = web.post(f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}")
    assert response.status_code == 200
    assert _row(services, sid).status == SubscriberStatus.UNSUBSCRIBED


def test_forged_tokens_get_a_plain_page_and_change_nothing(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    good = services.tokens.make(Purpose.UNSUBSCRIBE, sid)
    forged = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "garbage",
        services.tokens.make(Purpose.PREFERENCES, sid),
    ]
    for token in forged:
        for response in (
            web.get(f"/unsubscribe/{token}"),
            web.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}),
        ):
            assert response.status_code == 400
            assert "This link is not valid" in response.text
            assert "reader@example.org" not in response.text and "Traceback" not in response.text
    assert _row(services, sid).status == SubscriberStatus.ACTIVE


def test_unsubscribe_cancels_rows_not_yet_sent(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    with session_scope(services.sessions) as s:
        issue = Issue(subject="x", status=IssueStatus.SENDING)
        s.add(issue)
        s.flush()
        s.add(Delivery(issue_id=issue.id, subscriber_id=sid, status=DeliveryStatus.PENDING))
    web.post(f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}", data={"List-Unsubscribe": "One-Click"})
    with session_scope(services.sessions) as s:
        assert s.scalars(select(Delivery.status)).all() == [DeliveryStatus.CANCELLED]


def test_pages_carry_no_referrer_and_no_store(web: TestClient, services: Services) -> None:
    response = web.get(f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, _subscriber(services))}")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


# -- sign-up ------------------------------------------------------------------------------------


def test_signup_form_is_accessible(web: TestClient) -> None:
    html = web.get("/").text
    assert '<html lang="en">' in html and 'name="viewport"' in html
    assert '<label for="email">' in html and '<label for="timezone">' in html
    assert html.index("<h1>") < html.index("<legend>Specialties</legend>")
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in html  # time zone pre-filled from the browser


def test_signup_creates_a_pending_subscriber_and_sends_one_confirmation(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    response = web.post("/subscribe", data=SIGNUP)
    assert response.status_code == 200 and "Check your inbox" in response.text
    with session_scope(services.sessions) as s:
        row = s.scalar(select(Subscriber).where(Subscriber.email == "new@example.org"))
        assert row is not None and row.status == SubscriberStatus.PENDING
        assert (row.cadence, row.timezone, [x.slug for x in row.specialties]) == (
            "weekly",
            "Europe/Berlin",
            ["cardiology", "oncology"],
        )
    [mail] = smtp_sink.messages
    assert mail["To"] == "new@example.org" and "Confirm" in mail["Subject"]
    assert mail["List-Unsubscribe"] is None  # a transactional email, not list mail


def test_invalid_signup_shows_the_form_with_field_errors(web: TestClient, smtp_sink: SMTPSink) -> None:
    response = web.post(
        "/subscribe", data={"email": "not-an-address", "specialties": ["astrology"], "timezone": "Mars/Base"}
    )
    assert response.status_code == 400
    for field in ("email", "specialties", "timezone"):
        assert f'id="{field}-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert smtp_sink.received == []


def test_confirmation_emails_per_address_are_capped_per_day(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock
) -> None:
    limit = services.settings.confirmations_per_address_per_day
    for _ in range(limit + 3):
        response = web.post("/subscribe", data=SIGNUP)
        assert response.status_code == 200 and "Check your inbox" in response.text  # the page never tells
    assert len(smtp_sink.received) == limit
    clock.advance(days=1, minutes=1)
    web.post("/subscribe", data=SIGNUP)
    assert len(smtp_sink.received) == limit + 1


def test_client_address_rate_limit(web: TestClient, services: Services, smtp_sink: SMTPSink) -> None:
    limit = services.settings.signups_per_client
    codes = [
        web.post("/subscribe", data={**SIGNUP, "email": f"victim{n}@example.org"}).status_code for n in range(limit + 2)
    ]
    assert codes == [200] * limit + [429, 429]
    assert len(smtp_sink.received) == limit


def test_bounced_or_complained_addresses_get_no_confirmation(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    with session_scope(services.sessions) as s:
        suppress(s, "new@example.org", SuppressionReason.HARD_BOUNCE)
        suppress(s, "@blocked.example", SuppressionReason.OPERATOR)
    assert web.post("/subscribe", data=SIGNUP).status_code == 200
    assert web.post("/subscribe", data={**SIGNUP, "email": "x@blocked.example"}).status_code == 200
    assert smtp_sink.received == []


def test_honeypot_posts_send_nothing(web: TestClient, services: Services, smtp_sink: SMTPSink) -> None:
    assert web.post("/subscribe", data={**SIGNUP, "website": "http://spam.example"}).status_code == 200
    assert smtp_sink.received == []
    with session_scope(services.sessions) as s:
        assert s.scalar(select(SignupAttempt)) is None


def test_an_old_confirmation_link_cannot_undo_an_unsubscribe(web: TestClient, services: Services, clock) -> None:
    sid = _subscriber(services)
    old_link = services.confirmations.confirm_url(sid, clock()).removeprefix(services.settings.base_url)
    clock.advance(hours=1)
    web.post(f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}")
    response = web.get(old_link)
    assert "out of date" in response.text
    assert _row(services, sid).status == SubscriberStatus.UNSUBSCRIBED


# -- preference centre --------------------------------------------------------------------------


def test_preferences_show_and_save(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    url = f"/preferences/{services.tokens.make(Purpose.PREFERENCES, sid)}"
    page = web.get(url)
    assert page.status_code == 200 and "reader@example.org" in page.text
    assert 'value="cardiology" checked' in page.text
    saved = web.post(
        url, data={"specialties": ["neurology"], "cadence": "weekly", "timezone": "Asia/Tokyo", "paused": "1"}
    )
    assert saved.status_code == 200 and "Your preferences are saved" in saved.text
    row = _row(services, sid)
    assert (row.status, row.cadence, row.timezone) == (SubscriberStatus.PAUSED, "weekly", "Asia/Tokyo")
    web.post(url, data={"specialties": ["neurology"], "cadence": "weekly", "timezone": "Asia/Tokyo"})
    assert _row(services, sid).status == SubscriberStatus.ACTIVE


def test_preferences_reject_bad_values_and_bad_tokens(web: TestClient, services: Services) -> None:
    sid = _subscriber(services)
    url = f"/preferences/{services.tokens.make(Purpose.PREFERENCES, sid)}"
    assert web.post(url, data={"specialties": [], "timezone": "Nowhere/City"}).status_code == 400
    assert _row(services, sid).timezone == "UTC"
    assert web.get(f"/preferences/{services.tokens.make(Purpose.UNSUBSCRIBE, sid)}").status_code == 400


def test_signup_and_preferences_choose_edition_hour_and_weekday(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    form = web.get("/").text
    assert 'name="edition" value="patient"' in form and 'id="send_hour"' in form and 'id="send_weekday"' in form
    response = web.post(
        "/subscribe",
        data={
            **SIGNUP,
            "email": "carer@example.org",
            "edition": "patient",
            "cadence": "weekly",
            "send_hour": "18",
            "send_weekday": "6",
        },
    )
    assert response.status_code == 200
    with session_scope(services.sessions) as s:
        row = s.scalar(select(Subscriber).where(Subscriber.email == "carer@example.org"))
        assert (row.edition, row.cadence, row.send_hour, row.send_weekday) == ("patient", "weekly", 18, 6)
        row.status = "active"
        token = services.tokens.make(Purpose.PREFERENCES, row.id)
    page = web.get(f"/preferences/{token}").text
    assert 'value="patient" checked' in page and '<option value="18" selected>' in page
    saved = web.post(
        f"/preferences/{token}",
        data={
            "specialties": ["oncology"],
            "cadence": "daily",
            "timezone": "Asia/Tokyo",
            "edition": "clinician",
            "send_hour": "6",
            "send_weekday": "0",
        },
    )
    assert saved.status_code == 200
    with session_scope(services.sessions) as s:
        row = s.scalar(select(Subscriber).where(Subscriber.email == "carer@example.org"))
        assert (row.edition, row.cadence, row.send_hour, row.timezone) == ("clinician", "daily", 6, "Asia/Tokyo")
    bad = web.post(f"/preferences/{token}", data={"specialties": ["oncology"], "send_hour": "25", "edition": "robot"})
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
