"""The moving parts of the chaos runs: a Redis server of the suite's own (on a free port, so that a
restart touches nothing else on the machine), ``celery -A workers worker`` subprocesses that can be
SIGKILLed, and the web app served by uvicorn on loopback: from a thread of the test process (when
the test needs to watch its database sessions) or as ``digest serve`` in a process of its own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis
import uvicorn
from fastapi import FastAPI

from digest.delivery.sink import free_port


class RedisServer:
    """``redis-server --port PORT --save "" --appendonly no``: no persistence, so a restart loses
    every queued task, as a crashed broker without persistence does."""

    def __init__(self, workdir: Path):
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed (apt-get install redis-server)"
        self.exe = exe
        self.port = free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server on port {self.port} did not start; see {self.workdir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()
        self.restarts += 1


class Worker:
    """One ``celery -A workers worker --concurrency 1`` in its own process group (its pool child
    dies with it on SIGKILL, as on a crashed host)."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path):
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers",
                    "worker",
                    "--concurrency",
                    "1",
                    "--loglevel=warning",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{name}-{os.getpid()}@%h",
                ],
                env=env,
                cwd=workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL, no warning: the task in hand is neither finished nor acknowledged."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def has_connection_from(self, port: int) -> bool:
        """Whether a process of this worker owns the loopback TCP socket with local port ``port``."""
        inodes = _socket_inodes(port)
        for pid in _group_pids(self.proc.pid):
            try:
                fds = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(fd) in inodes:
                        return True
                except OSError:
                    continue
        return False

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self) -> str:
        return f"--- {self.name} ---\n{self.log.read_text(errors='replace')[-3000:]}"


def _socket_inodes(local_port: int) -> set[str]:
    """``socket:[inode]`` names of the IPv4/IPv6 TCP sockets bound to ``local_port`` (Linux /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                found.add(f"socket:[{fields[9]}]")
    return found


def _group_pids(pgid: int) -> list[int]:
    """The processes of one process group: a worker and its pool children."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            pids.append(int(stat.parent.name))
    return pids


def worker_env(
    *,
    database_url: str,
    broker_url: str,
    smtp_url: str,
    var_dir: Path,
    lease_seconds: int,
    chunk_size: int,
    probe_first_seconds: float = 30,
) -> dict[str, str]:
    """The environment of a worker subprocess: the test runner's, minus any DIGEST_* setting of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") or k.startswith("DIGEST_TEST_")}
    env.update(
        DIGEST_DATABASE_URL=database_url,
        DIGEST_BROKER_URL=broker_url,
        DIGEST_SMTP_URL=smtp_url,
        DIGEST_TRANSPORT="smtp",
        DIGEST_VAR_DIR=str(var_dir),
        DIGEST_SECRET_KEY="chaos-secret",
        DIGEST_BASE_URL="https://digest.example.org",
        DIGEST_FROM="Evidence Digest <digest@news.example.org>",
        DIGEST_LEASE_SECONDS=str(lease_seconds),
        DIGEST_CHUNK_SIZE=str(chunk_size),
        DIGEST_LOG_LEVEL="WARNING",
        DIGEST_PROBE_FIRST_SECONDS=str(probe_first_seconds),
    )
    if "DIGEST_METRICS_DIR" in os.environ:
        env["DIGEST_METRICS_DIR"] = os.environ["DIGEST_METRICS_DIR"]
    return env


@contextmanager
def live_app(app: FastAPI) -> Iterator[str]:
    """Serve the app with uvicorn on a free loopback port from a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def served_app(env: dict[str, str], workdir: Path) -> Iterator[str]:
    """``digest serve`` (uvicorn, as in production) in its own process on a free loopback port, so
    that load generated by this process does not share its interpreter; yields its base URL."""
    exe = shutil.which("digest", path=str(Path(sys.executable).parent))
    assert exe, "the digest console script is not installed in this environment"
    port = free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [exe, "serve", "--port", str(port)], env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"digest serve did not start on port {port}:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
