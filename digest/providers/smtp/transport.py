"""SMTP transport on smtplib: one connection per process, reused across batches, reconnected on drops.

MAIL, RCPT and DATA go in one write when the server offers PIPELINING (RFC 2920), else step by
step; either way the message itself is sent only after the 354 to DATA, so a pooled connection found
dead before then is reopened and the message sent at once (nothing had been handed over). A drop
after the message was sent is reported as transient, since the server may or may not have it.
Replies map onto failure classes (``classify``): 2xx accepted; 421 and 4.7.x throttling; other 4xx
temporary; 5.1.x and 5.2.1 the recipient; 5.7.x (policy, relay denied, authentication or TLS
required), 530 and 535 before the message content the connection or account, never the reader;
other 5xx to RCPT the recipient; any other 5xx after the content that message. After a throttling or
connection failure the rest of the batch is not tried.

Several relays (``DIGEST_SMTP_URL`` with comma-separated URLs): the first that connects and logs
in carries the mail. A relay that cannot be reached or refuses the login, or that refuses a
transaction by policy (a connection-class reply before the content), is left for the next one in the
same batch; only when every relay fails is it a connection failure (the circuit opens). The
transport stays on the relay that worked until it fails in turn.

Logging in: one mechanism per connection (PLAIN, else LOGIN), never a second after a 535, and the
server's reply in the error: a wrong password costs one failed login per connection attempt.

With PIPELINING, the next message's envelope goes in the same write as this message's content and
end of data (RFC 2920 lets message content open a group of commands): one round trip per message
of a batch, after the first. If the connection drops there, the next message had not reached
DATA, so it is sent again on a new connection; its content is only ever written after its 354.
Without PIPELINING: four round trips per message.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from digest.delivery.transport import (
    NOT_COUNTED,
    ConnectionFailure,
    Failure,
    SendResult,
    Throttled,
    TransportError,
)
from digest.rendering.headers import DotFree, is_plain_address
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
        host = parts.hostname or "127.0.0.1"
        if parts.username and not (implicit or flag("starttls", "0")) and not _on_this_host(host):
            raise ValueError(
                f"DIGEST_SMTP_URL has credentials but no TLS: the password would cross the network in the "
                f"clear to {host}; use smtps://... or add ?starttls=1"
            )
        return cls(
            host=host,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=not implicit and flag("starttls", "0"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=float(query.get("timeout", 30)),
            verify_tls=flag("verify", "1"),
        )

    @classmethod
    def from_urls(cls, urls: str) -> list[SMTPConfig]:
        """One or several relays: ``smtp://a:25, smtps://b:465`` (in order of preference). A comma
        separates relays only before ``smtp://`` or ``smtps://``; percent-encode one in a password."""
        return [cls.from_url(url.strip()) for url in _RELAYS.split(urls.strip()) if url.strip()]


_RELAYS = re.compile(r"\s*,\s*(?=smtps?://)")


def _on_this_host(host: str) -> bool:
    """localhost or a loopback address: a relay on this machine, where nothing crosses a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SMTPTransport:
    name = "smtp"
    wants_raw = True
    batch_size = 1
    idle_check_after = 20.0  # seconds: probe an idle pooled connection with NOOP before reuse

    def __init__(self, config: SMTPConfig | Sequence[SMTPConfig], *, batch_size: int = 1):
        self.relays = [config] if isinstance(config, SMTPConfig) else list(config)
        if not self.relays:
            raise ValueError("DIGEST_SMTP_URL names no SMTP server")
        self._relay = 0  # the relay in use
        self.batch_size = batch_size  # messages per ledger commit (DIGEST_SMTP_BATCH_SIZE)
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0
        self.connections_opened = 0
        # One pooled connection per process; the web app's threads (confirmation emails) share it.
        self._lock = threading.Lock()

    @property
    def config(self) -> SMTPConfig:
        return self.relays[self._relay]

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.config.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self) -> smtplib.SMTP:
        """A connection to the relay in use, else to the next one that works (in order)."""
        failures: list[TransportError] = []
        for step in range(len(self.relays)):
            if step:
                self._relay = (self._relay + 1) % len(self.relays)
            try:
                return self._connect_relay()
            except (ConnectionFailure, Throttled) as exc:
                failures.append(exc)
        if len(failures) == 1 or all(isinstance(f, Throttled) for f in failures):
            raise failures[0]
        raise ConnectionFailure("every SMTP relay failed: " + "; ".join(str(f) for f in failures))

    def _connect_relay(self) -> smtplib.SMTP:
        """Open, greet, STARTTLS and log in; every failure here is the connection's or the account's
        (ConnectionFailure), except a 421 / 4.7.x greeting, which asks us to come back later."""
        cfg = self.config
        where = f"SMTP server {cfg.host}:{cfg.port}"
        conn: smtplib.SMTP | None = None
        try:
            if cfg.implicit_tls:
                conn = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls_context())
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            conn.ehlo()
            if cfg.starttls:
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if cfg.username:
                _login(conn, cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            _quit(conn)
            raise ConnectionFailure(f"{where} refused the login for {cfg.username!r}: {_reply_text(exc)}") from exc
        except smtplib.SMTPResponseException as exc:
            _quit(conn)
            text = f"{where} answered {_reply_text(exc)}"
            if classify(exc.smtp_code, _decode(exc.smtp_error), stage="connect") == Failure.THROTTLED:
                raise Throttled(text) from exc
            raise ConnectionFailure(text) from exc
        except (OSError, smtplib.SMTPException) as exc:
            _quit(conn)
            raise ConnectionFailure(f"cannot connect to {where}: {exc}") from exc
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
            by_id = {m.delivery_id: m for m in messages}
            switches = 0  # relays left for another one in this call
            ready: OutgoingMessage | None = None  # its envelope is accepted: the server awaits its content
            while True:
                stop = next((r for r in results if r.failure in NOT_COUNTED), None)
                if stop is not None:
                    if ready is not None:  # the server awaits content we no longer send
                        queue.appendleft(ready)
                        ready = None
                        self._drop()
                    if stop.failure == Failure.CONNECTION and switches < len(self.relays) - 1:
                        # This relay refuses by policy: the message was not judged; the next relay tries.
                        switches += 1
                        results.remove(stop)
                        queue.appendleft(by_id[stop.delivery_id])
                        self._drop()
                        self._relay = (self._relay + 1) % len(self.relays)
                        continue
                    return results + [SendResult.untried(m.delivery_id, stop) for m in queue]
                if not queue and ready is None:
                    return results
                if ready is None:
                    msg = queue.popleft()
                    try:
                        ready = self._open(msg, results)
                    except TransportError as exc:
                        if not results:
                            raise
                        return results + [SendResult.untried(m.delivery_id, exc) for m in (msg, *queue)]
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

    def probe(self) -> None:
        """Connect and log in (the pooled connection, if it still answers, is proof enough)."""
        with self._lock:
            self._connection()

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
                    results.append(SendResult.failed(msg.delivery_id, f"connection lost: {exc}", Failure.TEMPORARY))
                    return None
                retry = False

    def _content(self, msg: OutgoingMessage, follow: OutgoingMessage | None) -> SendResult:
        """Send ``msg`` (after its 354) and, pipelined in the same write, ``follow``'s envelope."""
        conn = self._conn
        assert conn is not None
        try:
            conn.send(_data(msg.raw, _envelope_commands(follow) if follow is not None else b""))
            code, reply = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The one window no protocol closes: the server may have accepted the message.
            self._drop()
            return SendResult.failed(msg.delivery_id, f"connection lost during DATA: {exc}", Failure.TEMPORARY)
        self._last_used = time.monotonic()
        if code != 250:
            if code == 421:  # the server is closing the connection
                self._drop()
            elif follow is None:  # with ``follow`` pipelined, the server has moved on to its envelope
                self._reset(conn)
            return _reply_result(msg, code, reply, stage="content")
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
        step, (code, reply) = refusal
        if code == 421:  # the server is closing the connection
            self._drop()
        else:  # the transaction was refused inside a working connection: RSET and keep it
            self._reset(conn)
        raise _Refused(code, reply, stage=_STAGES[step])

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

    def __init__(self, code: int, reply: bytes, *, stage: str):
        super().__init__(code, reply)
        self.code, self.reply, self.stage = code, reply, stage

    def result(self, msg: OutgoingMessage) -> SendResult:
        return _reply_result(msg, self.code, self.reply, stage=self.stage)


_EXPECTED = ((250,), (250, 251), (354,))  # MAIL, RCPT, DATA
_STAGES = ("mail", "rcpt", "data")


def _commands(msg: OutgoingMessage) -> tuple[str, str, str]:
    return f"MAIL FROM:{_angle(msg.envelope_from)}", f"RCPT TO:{_angle(msg.to_email)}", "DATA"


def _envelope_commands(msg: OutgoingMessage) -> bytes:
    """MAIL FROM, RCPT TO and DATA as one pipelined write (ASCII, as smtplib sends commands)."""
    return "".join(f"{c}\r\n" for c in _commands(msg)).encode("ascii")


def _angle(address: str) -> str:
    """``<address>`` as ``smtplib.quoteaddr`` writes it, without parsing a plain address."""
    return f"<{address}>" if is_plain_address(address) else smtplib.quoteaddr(address)


def _data(raw: bytes, then: bytes = b"") -> bytes:
    """The message as DATA carries it: leading dots doubled, ended by a lone dot, followed by
    ``then`` (pipelined commands). What ``smtplib.SMTP.data`` sends, by ``bytes.replace`` instead of
    its regular expressions, and in one copy of the message when no line starts with a dot: ``raw``
    has CRLF line ends already, as ``mime_bytes`` and the DKIM signer write them. Bytes marked
    ``DotFree`` by the MIME writer have no line-leading dot and are not searched for one (a search of
    30 KB cost more than the rest of this function)."""
    dot_free = isinstance(raw, DotFree)
    stuffed = raw.replace(b"\r\n.", b"\r\n..") if not dot_free and b"\r\n." in raw else raw
    return b"".join(
        (b"." if raw.startswith(b".") else b"", stuffed, b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n", then)
    )


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Basic codes that are about the session whatever the stage: 421 closing (busy), 530 authentication
# or STARTTLS required, 534/535/538 authentication refused.
_SESSION_CODES = {530, 534, 535, 538}


def classify(code: int, text: str, *, stage: str) -> Failure:
    """What a refusal says failed (RFC 5321 basic and RFC 3463 enhanced codes).

    ``stage``: ``connect`` (greeting, EHLO, STARTTLS, AUTH), ``mail``, ``rcpt``, ``data`` (the DATA
    command) or ``content`` (the reply after the message). 5.7.x before the content is a policy
    refusal of the session (relay denied, authentication or TLS required), not a bad mailbox; after
    the content it is this message that was refused.
    """
    match = _ENHANCED.match(text)
    enhanced = (match.group(2), match.group(3)) if match else None
    if code == 421 or (400 <= code < 500 and enhanced is not None and enhanced[0] == "7"):
        return Failure.THROTTLED
    if 400 <= code < 500:
        return Failure.TEMPORARY
    if code in _SESSION_CODES or stage in ("connect", "mail"):
        return Failure.CONNECTION
    if enhanced is not None and (enhanced[0] == "1" or enhanced == ("2", "1")):
        return Failure.RECIPIENT
    if enhanced is not None and enhanced[0] == "7":
        return Failure.MESSAGE if stage == "content" else Failure.CONNECTION
    if stage == "rcpt" and (enhanced is None or enhanced[0] not in ("3", "6")):
        return Failure.RECIPIENT
    return Failure.MESSAGE


def _reply_result(msg: OutgoingMessage, code: int, reply: bytes | str, *, stage: str) -> SendResult:
    text = _decode(reply)
    return SendResult.failed(msg.delivery_id, f"{code} {text}".strip(), classify(code, text, stage=stage))


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _reply_text(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_decode(exc.smtp_error)}".strip()


_MECHANISMS = ("PLAIN", "LOGIN")  # in order of preference; CRAM-MD5 needs the password stored in clear anyway


def _login(conn: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH with one mechanism the server offers. ``smtplib.SMTP.login`` tries the next mechanism
    after a refusal, which doubles the failed logins a server counts (fail2ban, provider lockouts)."""
    offered = conn.esmtp_features.get("auth", "").upper().split() if conn.has_extn("auth") else []
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPNotSupportedError(
            f"the server offers no AUTH mechanism digest can use (offered: {' '.join(offered) or 'none'};"
            " does it require STARTTLS first?)"
        )
    conn.user, conn.password = username, password
    authobject = conn.auth_plain if mechanism == "PLAIN" else conn.auth_login
    conn.auth(mechanism, authobject, initial_response_ok=True)


def _quit(conn: smtplib.SMTP | None) -> None:
    """Say QUIT and close, ignoring a server already gone."""
    if conn is None:
        return
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()
