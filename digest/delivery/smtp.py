"""SMTP transport on smtplib: one connection per process, reused across batches, reconnected on drops.

MAIL, RCPT and DATA go in one write when the server offers PIPELINING (RFC 2920), else step by
step; either way the message itself is sent only after the 354 to DATA, so a pooled connection found
dead before then is reopened and the message sent at once (nothing had been handed over). A drop
after the message was sent is reported as transient, since the server may or may not have it.
Replies map onto results: 2xx accepted; 4xx transient; 5xx at RCPT a hard bounce (the address is
bad); 5xx elsewhere a permanent failure of that message only.

With PIPELINING, the next message's envelope goes in the same write as this message's content and
end of data (RFC 2920 lets message content open a group of commands): one round trip per message
of a batch, after the first. If the connection drops there, the next message had not reached
DATA, so it is sent again on a new connection; its content is only ever written after its 354.
Without PIPELINING: four round trips per message.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from digest.delivery.transport import PermanentError, SendResult, TransientError, TransportError
from digest.rendering.headers import is_plain_address
from digest.rendering.message import OutgoingMessage


@dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    verify_tls: bool = True

    @classmethod
    def from_url(cls, url: str) -> SMTPConfig:
        """``smtp://user:pass@host:587?starttls=1``, ``smtps://host:465``, ``?timeout=10&verify=0``."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"DIGEST_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}

        def flag(name: str, default: str) -> bool:
            return query.get(name, default).lower() in ("1", "true", "yes", "on")

        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=not implicit and flag("starttls", "0"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=float(query.get("timeout", 30)),
            verify_tls=flag("verify", "1"),
        )


class SMTPTransport:
    name = "smtp"
    batch_size = 1
    idle_check_after = 20.0  # seconds: probe an idle pooled connection with NOOP before reuse

    def __init__(self, config: SMTPConfig, *, batch_size: int = 1):
        self.config = config
        self.batch_size = batch_size  # messages per ledger commit (DIGEST_SMTP_BATCH_SIZE)
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0
        self.connections_opened = 0
        # One pooled connection per process; the web app's threads (confirmation emails) share it.
        self._lock = threading.Lock()

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.config.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.implicit_tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls_context()
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            conn.ehlo()
            if cfg.starttls:
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"SMTP authentication failed at {cfg.host}:{cfg.port}: {exc.smtp_code}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"cannot connect to SMTP server {cfg.host}:{cfg.port}: {exc}") from exc
        self.connections_opened += 1
        return conn

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None and time.monotonic() - self._last_used > self.idle_check_after:
            try:
                if self._conn.noop()[0] != 250:
                    self._drop()
            except (OSError, smtplib.SMTPException):
                self._drop()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
        self._conn = None

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One SMTP transaction per message, in order; the results in the order they were known.

        A connection that cannot be opened fails the batch (TransportError) only while nothing of
        it was handed over. Later in the batch (the server went away and does not come back), the
        messages already answered keep their results and the rest fail as transient: raising
        then would have sent the accepted ones back to ``pending``, to be sent again."""
        with self._lock:
            results: list[SendResult] = []
            queue = deque(messages)
            ready: OutgoingMessage | None = None  # its envelope is accepted: the server awaits its content
            while queue or ready is not None:
                if ready is None:
                    msg = queue.popleft()
                    try:
                        ready = self._open(msg, results)
                    except TransportError as exc:
                        if not results:
                            raise
                        results += [SendResult.failed(m.delivery_id, str(exc), permanent=False) for m in (msg, *queue)]
                        return results
                    continue
                follow = queue[0] if queue and self._conn is not None and self._conn.has_extn("pipelining") else None
                results.append(self._content(ready, follow))
                ready = None
                if follow is not None and self._conn is not None:
                    queue.popleft()
                    try:
                        self._envelope(self._conn, follow, written=True)
                        ready = follow
                    except _Dropped:
                        queue.appendleft(follow)  # it never reached DATA: send it on a new connection
                    except _Refused as refused:
                        results.append(refused.result(follow))
            return results

    def _open(self, msg: OutgoingMessage, results: list[SendResult]) -> OutgoingMessage | None:
        """Start ``msg``'s transaction; it is returned once the server awaits its content, else its
        failure goes to ``results``. A pooled connection found closed is reopened once: nothing had
        been handed over."""
        retry = self._conn is not None
        while True:
            conn = self._connection()
            try:
                self._envelope(conn, msg)
                return msg
            except _Refused as refused:
                results.append(refused.result(msg))
                return None
            except _Dropped as exc:
                if not retry:
                    results.append(SendResult.failed(msg.delivery_id, f"connection lost: {exc}", permanent=False))
                    return None
                retry = False

    def _content(self, msg: OutgoingMessage, follow: OutgoingMessage | None) -> SendResult:
        """Send ``msg`` (after its 354) and, pipelined in the same write, ``follow``'s envelope."""
        conn = self._conn
        assert conn is not None
        try:
            conn.send(
                _data(msg.raw, _envelope_commands(follow) if follow is not None else b"", dot_free=msg.raw_dot_free)
            )
            code, reply = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The one window no protocol closes: the server may have accepted the message.
            self._drop()
            return SendResult.failed(msg.delivery_id, f"connection lost during DATA: {exc}", permanent=False)
        self._last_used = time.monotonic()
        if code != 250:
            if follow is None:  # with ``follow`` pipelined, the server has moved on to its envelope
                self._reset(conn)
            return _reply_result(msg, code, reply, at_rcpt=False)
        return SendResult.ok(msg.delivery_id, provider_id=msg.message_id)

    def _envelope(self, conn: smtplib.SMTP, msg: OutgoingMessage, *, written: bool = False) -> None:
        """MAIL FROM, RCPT TO and DATA up to the server's 354, so that a drop here is known to have
        sent nothing. ``written``: the pipelined commands went out already (after the previous
        message's content); only their replies are read. Raises _Refused (after RSET, the
        connection kept) or _Dropped."""
        commands = _commands(msg)
        try:
            if conn.has_extn("pipelining"):
                if not written:
                    conn.send(_envelope_commands(msg))
                replies = [conn.getreply() for _ in commands]
            else:
                replies = []
                for command in commands:  # step by step: stop at the first refusal
                    replies.append(conn.docmd(command))
                    if replies[-1][0] not in _EXPECTED[len(replies) - 1]:
                        break
            refusal = next(((i, r) for i, r in enumerate(replies) if r[0] not in _EXPECTED[i]), None)
            if refusal is None:
                return
            if replies[-1][0] == 354:  # a server that said yes to DATA after refusing the envelope
                conn.send(".\r\n")
                conn.getreply()
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise _Dropped(str(exc) or "server closed the connection") from exc
        except OSError as exc:
            self._drop()
            raise _Dropped(str(exc)) from exc
        # The transaction was refused inside a working connection: RSET and keep it.
        self._reset(conn)
        step, (code, reply) = refusal
        raise _Refused(code, reply, at_rcpt=step == 1)

    def _reset(self, conn: smtplib.SMTP) -> None:
        """After a refused transaction, RSET so the connection can carry the next message."""
        try:
            conn.rset()
            self._last_used = time.monotonic()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.quit()
                except (OSError, smtplib.SMTPException):
                    pass
            self._drop()


class _Dropped(Exception):
    """The connection went away before DATA: the server has not got the message."""


class _Refused(Exception):
    """A reply other than 2xx to MAIL FROM or RCPT TO."""

    def __init__(self, code: int, reply: bytes, *, at_rcpt: bool):
        super().__init__(code, reply)
        self.code, self.reply, self.at_rcpt = code, reply, at_rcpt

    def result(self, msg: OutgoingMessage) -> SendResult:
        return _reply_result(msg, self.code, self.reply, at_rcpt=self.at_rcpt)


_EXPECTED = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA


def _commands(msg: OutgoingMessage) -> tuple[str, str, str]:
    return f"MAIL FROM:{_angle(msg.envelope_from)}", f"RCPT TO:{_angle(msg.to_email)}", "DATA"


def _envelope_commands(msg: OutgoingMessage) -> bytes:
    """MAIL FROM, RCPT TO and DATA as one pipelined write (ASCII, as smtplib sends commands)."""
    return "".join(f"{c}\r\n" for c in _commands(msg)).encode("ascii")


def _angle(address: str) -> str:
    """``<address>`` as ``smtplib.quoteaddr`` writes it, without parsing a plain address."""
    return f"<{address}>" if is_plain_address(address) else smtplib.quoteaddr(address)


def _data(raw: bytes, then: bytes = b"", *, dot_free: bool = False) -> bytes:
    """The message as DATA carries it: leading dots doubled, ended by a lone dot, followed by
    ``then`` (pipelined commands). What ``smtplib.SMTP.data`` sends, by ``bytes.replace`` instead of
    its regular expressions, and in one copy of the message when no line starts with a dot: ``raw``
    has CRLF line ends already, as ``mime_bytes`` and the DKIM signer write them. ``dot_free``: the
    composer wrote no line-leading dot, so the message is not searched for one (a search of 30 KB
    cost more than the rest of this function)."""
    stuffed = raw.replace(b"\r\n.", b"\r\n..") if not dot_free and b"\r\n." in raw else raw
    return b"".join(
        (b"." if raw.startswith(b".") else b"", stuffed, b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n", then)
    )


# Enhanced status codes (RFC 3463) that say the address itself is bad, when given after DATA.
_BAD_ADDRESS = ("5.1.", "5.2.1")


def _reply_result(msg: OutgoingMessage, code: int, reply: bytes | str, *, at_rcpt: bool) -> SendResult:
    """4xx: try again later. 5xx to RCPT (or an enhanced 5.1.x / 5.2.1 later): a hard bounce, the
    address is suppressed. Any other 5xx: this message failed, the address is kept."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    error = f"{code} {text}".strip()
    if 400 <= code < 500:
        return SendResult.failed(msg.delivery_id, error, permanent=False)
    bad_address = at_rcpt or text.lstrip().startswith(_BAD_ADDRESS)
    return SendResult.failed(msg.delivery_id, error, permanent=True, bounce=bad_address)
