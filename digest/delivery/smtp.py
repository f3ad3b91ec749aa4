"""SMTP transport on smtplib: one connection per process, reused across batches, reconnected on drops.

Replies map onto results: 2xx accepted; 4xx (and dropped connections) transient; 5xx at RCPT is a
hard bounce (the address is bad); 5xx elsewhere is a permanent failure of that message only.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from digest.delivery.transport import PermanentError, SendResult, TransientError
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
        flag = lambda name, default: query.get(name, default).lower() in ("1", "true", "yes", "on")  # noqa: E731
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
                conn: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=self._tls_context())
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
        results = []
        for msg in messages:
            results.append(self._send_one(msg))
        return results

    def _send_one(self, msg: OutgoingMessage) -> SendResult:
        conn = self._connection()
        try:
            refused = conn.sendmail(msg.envelope_from, [msg.to_email], msg.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            self._reset(conn)
            return _reply_result(msg, code, reply, at_rcpt=True)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            self._reset(conn)
            return _reply_result(msg, exc.smtp_code, exc.smtp_error, at_rcpt=False)
        except smtplib.SMTPResponseException as exc:
            self._drop()
            return _reply_result(msg, exc.smtp_code, exc.smtp_error, at_rcpt=False)
        except (smtplib.SMTPServerDisconnected, OSError, socket.timeout) as exc:
            self._drop()
            return SendResult.failed(msg.delivery_id, f"connection lost: {exc}", permanent=False)
        self._last_used = time.monotonic()
        if refused:  # only possible with several recipients; kept for completeness
            code, reply = refused[msg.to_email]
            return _reply_result(msg, code, reply, at_rcpt=True)
        return SendResult.ok(msg.delivery_id, provider_id=msg.message_id)

    def _reset(self, conn: smtplib.SMTP) -> None:
        """After a refused transaction, RSET so the connection can carry the next message."""
        try:
            conn.rset()
            self._last_used = time.monotonic()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
        self._drop()


def _reply_result(msg: OutgoingMessage, code: int, reply: bytes | str, *, at_rcpt: bool) -> SendResult:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    error = f"{code} {text}".strip()
    if 400 <= code < 500:
        return SendResult.failed(msg.delivery_id, error, permanent=False)
    return SendResult.failed(msg.delivery_id, error, permanent=True, bounce=at_rcpt)
