"""What subscribers read on the public pages: errors in plain words next to their field (with focus),
the time-zone picker, the confirmed page repeating the choices, and the way back after unsubscribing."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from lxml import html as lxml_html
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.models import Subscriber, SubscriberStatus
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber

PYDANTIC_WORDING = ("List should have", "after validation", "invalid email address", "Value error", "Input should")


def _doc(text: str) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(text)


def test_an_empty_signup_names_each_problem_in_plain_words_next_to_its_field(web: TestClient) -> None:
    response = web.post("/subscribe", data={"email": "", "timezone": "Mars/Base"})
    assert response.status_code == 400
    for wording in PYDANTIC_WORDING:
        assert wording not in response.text
    doc = _doc(response.text)
    summary = doc.get_element_by_id("error-summary-title").getparent()
    assert summary.get("role") == "alert"
    assert [a.text_content() for a in summary.iter("a")] == [
        "Enter your email address.",
        "Choose at least one specialty.",
        "We do not know the time zone \u201cMars/Base\u201d. Type a city, such as Berlin, and choose from the list.",
    ]
    assert [a.get("href") for a in summary.iter("a")] == ["#email", "#specialty-0", "#timezone"]
    email = doc.get_element_by_id("email")
    assert email.get("aria-invalid") == "true" and "email-error" in email.get("aria-describedby").split()
    assert email.get("autofocus") is not None  # the first field with an error takes the focus
    assert len(doc.xpath("//*[@autofocus]")) == 1
    # The message sits in the field's own block, right before the control.
    assert doc.get_element_by_id("email-error").getnext() is email
    specialties = doc.xpath("//fieldset[.//input[@name='specialties']]")[0]
    assert specialties.get("aria-describedby") == "specialties-error"
    assert "Choose at least one specialty." in specialties.text_content()


def test_a_malformed_address_is_explained_and_focused(web: TestClient) -> None:
    response = web.post("/subscribe", data={"email": "not an address", "specialties": ["cardiology"]})
    doc = _doc(response.text)
    assert doc.get_element_by_id("email-error").text_content() == (
        "Error: Enter your email address in the form name@example.org."
    )
    assert doc.xpath("//*[@autofocus]/@id") == ["email"]


def test_the_first_error_in_page_order_takes_the_focus(web: TestClient) -> None:
    response = web.post("/subscribe", data={"email": "a@example.org", "timezone": "Nowhere/Land"})
    assert _doc(response.text).xpath("//*[@autofocus]/@id") == ["specialty-0"]


def test_the_time_zone_picker_offers_iana_zones_with_offsets(web: TestClient) -> None:
    doc = _doc(web.get("/").text)
    field = doc.get_element_by_id("timezone")
    assert field.get("list") == "timezones"
    options = {o.get("value"): o.text_content() for o in doc.get_element_by_id("timezones").iter("option")}
    assert options["Europe/Berlin"] in ("Europe/Berlin (UTC+01:00)", "Europe/Berlin (UTC+02:00)")
    assert options["America/New_York"].startswith("America/New York (UTC\u221205:00") or options[
        "America/New_York"
    ].startswith("America/New York (UTC\u221204:00")
    assert "UTC" in options and "US/Eastern" not in options and len(options) > 300


def test_a_city_name_is_taken_for_its_zone_and_nonsense_is_refused(
    web: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    response = web.post(
        "/subscribe", data={"email": "city@example.org", "specialties": ["cardiology"], "timezone": "new york"}
    )
    assert response.status_code == 200
    with session_scope(services.sessions) as s:
        assert s.scalar(select(Subscriber.timezone).where(Subscriber.email == "city@example.org")) == (
            "America/New_York"
        )
    refused = web.post("/subscribe", data={"email": "b@example.org", "specialties": ["cardiology"], "timezone": "x"})
    assert refused.status_code == 400 and "We do not know the time zone \u201cx\u201d" in refused.text


def test_the_weekday_field_is_marked_for_weekly_only(web: TestClient) -> None:
    doc = _doc(web.get("/").text)
    weekday = doc.get_element_by_id("send_weekday").getparent()
    assert "weekly-only" in weekday.get("class").split()
    assert "form:has(input[name=cadence][value=daily]:checked) .weekly-only { display: none; }" in web.get("/").text


def test_the_confirmed_page_repeats_the_choices_and_says_when_the_first_digest_comes(
    web: TestClient, services: Services, clock: Clock
) -> None:
    # 5 Dec 2026 is a Saturday; weekly on Monday at 06:00 Berlin time.
    with session_scope(services.sessions) as s:
        row = add_subscriber(
            s,
            "weekly@example.org",
            ["cardiology", "oncology"],
            cadence="weekly",
            timezone="Europe/Berlin",
            send_hour=6,
            send_weekday=0,
        )
        row.status = SubscriberStatus.PENDING
        sid = row.id
    token = services.tokens.make_confirm(sid, clock())
    response = web.get(f"/confirm/{token}")
    assert response.status_code == 200
    doc = _doc(response.text)
    rows = dict(
        zip([d.text_content() for d in doc.iter("dt")], [d.text_content() for d in doc.iter("dd")], strict=True)
    )
    assert rows["Specialties"] == "Cardiology, Oncology"
    assert rows["How often"] == "Every Monday at 06:00, Europe/Berlin time"
    assert rows["Edition"].startswith("For clinicians")
    first = clock() + timedelta(days=(7 - clock().weekday()) % 7 or 7)
    assert f"Monday {first.day} {first:%B} at 06:00 (Europe/Berlin time)" in doc.text_content()


def test_the_unsubscribed_page_has_no_unsubscribe_button_and_a_way_back(
    web: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    with session_scope(services.sessions) as s:
        sid = add_subscriber(s, "leaver@example.org", ["cardiology"], cadence="weekly").id
    token = services.tokens.make(Purpose.UNSUBSCRIBE, sid)
    done = web.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    again = web.get(f"/unsubscribe/{token}")  # the link in an old email, followed later
    for response in (done, again):
        assert response.status_code == 200
        assert "Unsubscribe</button>" not in response.text and 'class="danger"' not in response.text
        assert re.search(rf'action="/resubscribe/{re.escape(token)}"', response.text)
        assert "Subscribe again</button>" in response.text
    clock.advance(minutes=5)
    back = web.post(f"/resubscribe/{token}")
    assert back.status_code == 200 and "Check your inbox" in back.text
    [message] = smtp_sink.messages
    assert message["To"] == "leaver@example.org"
    link = re.search(r"/confirm/[\w.-]+", message.get_body(("plain",)).get_content())
    assert link is not None
    confirmed = web.get(link.group(0))
    assert "Thank you: your subscription is confirmed." in confirmed.text
    with session_scope(services.sessions) as s:
        row = s.get(Subscriber, sid)
        assert row is not None and row.status == SubscriberStatus.ACTIVE and row.cadence == "weekly"
    assert web.post("/resubscribe/forged").status_code == 400


def test_a_spanish_readers_preferences_refused_in_spanish_never_in_pydantics_words(
    web: TestClient, services: Services
) -> None:
    """No specialty, an unknown zone and a study type no form offers (a "|" in it: the relevance
    validator's refusal): each explained in the reader's Spanish next to its field."""
    with session_scope(services.sessions) as s:
        sid = add_subscriber(s, "lectora@example.org", ["cardiology"], locale="es").id
    token = services.tokens.make(Purpose.PREFERENCES, sid)
    response = web.post(
        f"/preferences/{token}",
        data={"timezone": "Marte/Base", "study_types": ["cohort|trial"], "max_items": "500"},
    )
    assert response.status_code == 400
    for wording in (*PYDANTIC_WORDING, "Choose", "may not contain", "Check this answer"):
        assert wording not in response.text
    summary = _doc(response.text).get_element_by_id("error-summary-title").getparent()
    assert [a.text_content() for a in summary.iter("a")] == [
        "Elija al menos una especialidad.",
        "No conocemos la zona horaria \u00abMarte/Base\u00bb. Escriba una ciudad, como Madrid, y elija de la lista.",
        "Elija tipos de estudio de la lista.",
        "Elija una respuesta de la lista.",
    ]
