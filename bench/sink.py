"""The SMTP server the benchmark delivers to: Postfix's ``smtp-sink``, or an aiosmtpd fallback.

``smtp-sink`` (C, event driven) accepts and discards mail at a rate no Python server reaches, so it
measures our sender, not the receiver. With ``-c`` it prints running counters (``mesg=N``) that we
read to know how many messages arrived. When Postfix is missing and cannot be installed with apt,
a counting aiosmtpd server runs in this process instead, and the report says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.delivery.sink import SMTPSink, free_port

_COUNTER = re.compile(rb"mesg=(\d+)")


def ensure_postfix(log: Any) -> bool:
    """True when smtp-sink and smtp-source are available, installing ``postfix`` with apt if needed."""
    if shutil.which("smtp-sink") and shutil.which("smtp-source"):
        return True
    if shutil.which("apt-get") and os.geteuid() == 0:
        log("smtp-sink not found: installing postfix with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"],
        ):
            if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
                break
    return bool(shutil.which("smtp-sink") and shutil.which("smtp-source"))


class PostfixSink:
    """``smtp-sink -u nobody -c 127.0.0.1:PORT 1000``; counts what it accepted."""

    kind = "postfix smtp-sink"
    READ_EVERY = 0.05  # seconds: the resolution of the counts and times the harness reports

    def __init__(self) -> None:
        self.port = free_port()
        self._count = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> PostfixSink:
        cmd = [shutil.which("smtp-sink") or "smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{self.port}", "1000"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        _wait_for_port(self.port, self._proc)
        return self

    def _read(self) -> None:
        """Follow the counter, reading what piled up every ``READ_EVERY`` seconds: woken for each
        message, this thread cost the harness a tenth of a core at 1,700 messages/s, taken from
        the sender under test on a 2-core machine. (The pipe holds thousands of counter updates.)"""
        assert self._proc is not None and self._proc.stdout is not None
        tail = b""
        while chunk := self._proc.stdout.read1(65536):
            tail = (tail + chunk)[-256:]
            found = _COUNTER.findall(tail)
            if found:
                self._count = int(found[-1])
            time.sleep(self.READ_EVERY)

    def count(self) -> int:
        return self._count

    @property
    def pid(self) -> int | None:
        """The smtp-sink process (its CPU time is the SMTP receiver's share of a run)."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)


class _Counting:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.count += 1
        return "250 2.0.0 accepted"


class AiosmtpdSink:
    """Fallback: a counting aiosmtpd server in this process (slower than smtp-sink)."""

    kind = "aiosmtpd (fallback: postfix not available)"

    def __init__(self) -> None:
        self._handler = _Counting()
        self._server = SMTPSink(handler=self._handler)
        self.port = self._server.port

    def start(self) -> AiosmtpdSink:
        self._server.start()
        return self

    def count(self) -> int:
        return self._handler.count

    pid = None  # in the harness's own process: not sampled apart

    def stop(self) -> None:
        self._server.stop()


Sink = PostfixSink | AiosmtpdSink


def start_sink(log: Any, *, prefer_postfix: bool = True) -> Sink:
    if prefer_postfix and ensure_postfix(log):
        return PostfixSink().start()
    log(
        "[yellow]Postfix's smtp-sink is not available: falling back to an aiosmtpd sink, "
        "and no smtp-source baseline[/yellow]"
    )
    return AiosmtpdSink().start()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"smtp-sink exited with status {proc.returncode} before listening on 127.0.0.1:{port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"smtp-sink did not listen on 127.0.0.1:{port} within {timeout:.0f} s")
