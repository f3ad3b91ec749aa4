"""``digest suppress add|list``: operator suppressions of addresses and whole domains, enforced at send time."""

from __future__ import annotations

from datetime import timedelta

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record


def test_suppress_add_and_list(cli, services: Services) -> None:
    assert cli("suppress", "add", "Someone@Example.org").exit_code == 0
    added = cli("suppress", "add", "@spam.example", "--reason", "operator", "--detail", "abuse desk")
    assert added.exit_code == 0 and "@spam.example suppressed" in added.stdout
    assert "already suppressed" in cli("suppress", "add", "someone@example.org").stdout
    listing = cli("suppress", "list")
    assert (
        "someone@example.org" in listing.stdout and "@spam.example" in listing.stdout and "2 entries" in listing.stdout
    )


def test_suppress_add_rejects_bad_input(cli, services: Services) -> None:
    bad_reason = cli("suppress", "add", "a@example.org", "--reason", "because")
    assert bad_reason.exit_code == 2 and "unknown reason" in bad_reason.stderr
    not_an_address = cli("suppress", "add", "not an address [x]")
    assert not_an_address.exit_code == 2
    # rich markup is rendered, never printed literally, and text from the input stays as written
    assert not_an_address.stderr.startswith("not an address or @domain: invalid email address 'not an address [x]'")
    assert "[red]" not in not_an_address.stderr


def test_no_send_reaches_a_suppressed_address_or_domain(
    cli, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology"], published_at=days_before(clock(), 1)))
        for email in ("ok@example.org", "blocked@example.org", "x@spam.example"):
            add_subscriber(s, email, ["cardiology"], created_at=clock() - timedelta(days=3))
    cli("suppress", "add", "blocked@example.org")
    cli("suppress", "add", "@spam.example")
    dispatch.send_due(services, clock())
    assert [r.rcpt_tos for r in smtp_sink.received] == [("ok@example.org",)]
