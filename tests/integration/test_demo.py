"""`digest demo`: sample data through a real local SMTP server into var/outbox, and a quiet second run."""

from __future__ import annotations

from email import message_from_bytes, policy

from digest.config import Settings


def test_demo_sends_once_and_writes_the_outbox(cli, settings: Settings) -> None:
    first = cli("demo")
    assert first.exit_code == 0, first.output
    assert "loaded the sample data" in first.output
    assert "digests" in first.output and "the SMTP server received" in first.output

    outbox = settings.var_dir / "outbox"
    emls = sorted(outbox.glob("*.eml"))
    assert len(emls) >= 40  # 50 sample subscribers, a few with nothing new
    assert len(list(outbox.glob("*.html"))) == len(emls) + 1  # + index.html
    index = (outbox / "index.html").read_text()
    assert f"{len(emls)} message(s)" in index
    msg = message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_body(preferencelist=("plain",)) is not None

    second = cli("demo")
    assert second.exit_code == 0, second.output
    assert "nothing new to send" in second.output
    assert len(list(outbox.glob("*.eml"))) == len(emls)
