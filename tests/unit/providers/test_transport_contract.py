"""One contract every transport keeps: one result per message, in order, with the provider's id; the
messages arrive with the digest headers; an empty batch sends nothing; close() is idempotent. Every
provider of ``config.TRANSPORTS`` has its rig here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from digest.config import TRANSPORTS
from digest.delivery.sink import SMTPSink
from digest.delivery.transport import Transport
from digest.providers.outbox import OutboxTransport
from digest.providers.postmark import PostmarkTransport
from digest.providers.sendgrid import SendGridTransport
from digest.providers.ses.transport import SESTransport
from digest.providers.smtp.transport import SMTPConfig, SMTPTransport
from tests.factories import outgoing
from tests.provider_server import ProviderServer


@dataclass(frozen=True)
class Arrived:
    to: str
    message_id: str
    subject: str
    list_unsubscribe: str
    list_unsubscribe_post: str
    text: str


@dataclass
class Rig:
    transport: Transport
    arrived: Callable[[], list[Arrived]]


def _from_mime(raw: bytes) -> Arrived:
    msg = message_from_bytes(raw, policy=policy.default)
    return Arrived(
        to=msg["To"].addresses[0].addr_spec,
        message_id=msg["Message-ID"],
        subject=msg["Subject"],
        list_unsubscribe=msg["List-Unsubscribe"],
        list_unsubscribe_post=msg["List-Unsubscribe-Post"],
        text=msg.get_body(preferencelist=("plain",)).get_content(),
    )


RIGGED = ("smtp", "outbox", "postmark", "sendgrid", "ses")


def test_every_provider_has_a_rig() -> None:
    assert sorted(RIGGED) == sorted(TRANSPORTS), "a new provider: give it a rig below (docs/providers.md)"


@pytest.fixture(params=RIGGED)
def rig(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    if request.param == "smtp":
        with SMTPSink() as sink:
            yield Rig(SMTPTransport(SMTPConfig.from_url(sink.url)), lambda: [_from_mime(r.raw) for r in sink.received])
    elif request.param == "outbox":
        yield Rig(
            OutboxTransport(tmp_path), lambda: [_from_mime(p.read_bytes()) for p in sorted(tmp_path.glob("*.eml"))]
        )
    else:
        with ProviderServer() as server:
            transport: Transport
            if request.param == "ses":
                monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.token)
                monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
                transport = SESTransport("eu-west-1", endpoint_url=server.url)
            else:
                cls = PostmarkTransport if request.param == "postmark" else SendGridTransport
                transport = cls(server.token, api_url=server.url)
            yield Rig(
                transport,
                lambda: [
                    Arrived(
                        a.to,
                        a.headers["Message-ID"],
                        a.subject,
                        a.headers["List-Unsubscribe"],
                        a.headers["List-Unsubscribe-Post"],
                        a.text,
                    )
                    for a in server.accepted
                ],
            )


def test_transport_contract(rig: Rig) -> None:
    transport = rig.transport
    assert isinstance(transport, Transport)
    assert transport.name and transport.batch_size >= 1
    messages = [
        outgoing(11, "ann@example.org", "Ann Lee"),
        outgoing(7, "bo@example.org"),
        outgoing(30, "zoe@example.org", 'Zoë "Z" & Co'),
    ]

    results = transport.send(messages)

    assert [r.delivery_id for r in results] == [m.delivery_id for m in messages]
    assert all(r.accepted and r.provider_id for r in results)
    arrived = {a.message_id: a for a in rig.arrived()}
    assert set(arrived) == {m.message_id for m in messages}
    for m in messages:
        got = arrived[m.message_id]
        assert got.to == m.to_email and got.subject == m.subject
        assert got.list_unsubscribe == dict(m.headers)["List-Unsubscribe"]
        assert got.list_unsubscribe_post == "List-Unsubscribe=One-Click"
        assert "Key takeaway" in got.text

    assert transport.send([]) == []
    transport.probe()  # what the circuit calls: it works
    transport.close()
    transport.close()
