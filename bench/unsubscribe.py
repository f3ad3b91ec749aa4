"""One-click unsubscribes against the served web app while the benchmark's send runs.

The approach of tests/chaos/test_unsubscribe_load.py, paced instead of flat out: ``digest serve``
(uvicorn, as in production) in its own process; a load process of its own (so the clients do not
queue for the harness's GIL) posts RFC 8058 one-click unsubscribes at a steady ``rate`` from a few
keep-alive connections, starting when the first message of the send has arrived. A steady rate is
what a list sees while a digest lands (readers act on the message), and it leaves the send at full
rate; the latencies are those of one request among the send's traffic, not of a queue of them.
"""

from __future__ import annotations

import http.client
import multiprocessing
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from digest.delivery.sink import free_port

ONE_CLICK = (b"List-Unsubscribe=One-Click", {"Content-Type": "application/x-www-form-urlencoded"})


@dataclass(frozen=True)
class LoadResult:
    requests: int
    latencies_ms: list[float]
    failures: list[str]
    seconds: float

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "answered_200": len(ordered),
            "failures": self.failures[:20],
            "rate_per_second": round(len(ordered) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
            "p99_ms": round(percentile(ordered, 99), 1) if ordered else None,
            "max_ms": round(ordered[-1], 1) if ordered else None,
        }


def percentile(ordered: list[float], p: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, round(p / 100 * len(ordered) + 0.5) - 1)]


@contextmanager
def served_app(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, int]]:
    """``digest serve`` on a free loopback port; yields (base URL, pid)."""
    exe = shutil.which("digest", path=str(Path(sys.executable).parent)) or "digest"
    port = free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "serve", "--port", str(port)], env=env, cwd=workdir, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"digest serve did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield base_url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client(base_url: str, work: queue.Queue[tuple[float, str]], latencies: list[float], failures: list[str]) -> None:
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
    try:
        while True:
            try:
                due, token = work.get_nowait()
            except queue.Empty:
                return
            time.sleep(max(0.0, due - time.perf_counter()))
            started = time.perf_counter()
            try:
                connection.request("POST", f"/unsubscribe/{token}", *ONE_CLICK)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                connection.close()
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                failures.append(f"{response.status}: {body[:200]!r}")
    finally:
        connection.close()


def fire(base_url: str, tokens: list[str], rate: float, clients: int) -> LoadResult:
    """POST every token's one-click unsubscribe, the i-th at ``i / rate`` seconds from now."""
    work: queue.Queue[tuple[float, str]] = queue.Queue()
    start = time.perf_counter()
    for i, token in enumerate(tokens):
        work.put((start + i / rate, token))
    latencies: list[float] = []
    failures: list[str] = []
    threads = [threading.Thread(target=_client, args=(base_url, work, latencies, failures)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return LoadResult(len(tokens), latencies, failures, time.perf_counter() - start)


class UnsubscribeLoad:
    """The load process: ``start`` when the send is under way, ``result`` when it is over."""

    def __init__(self, base_url: str, tokens: list[str], rate: float, clients: int = 4):
        self.args = (base_url, tokens, rate, clients)
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._pool.submit(int).result()  # the process is up (spawned and imported) before the send begins
        self._future: Future[LoadResult] | None = None

    @property
    def requests(self) -> int:
        return len(self.args[1])

    @property
    def idle(self) -> bool:
        """Not started yet."""
        return self._future is None

    def start(self) -> None:
        self._future = self._pool.submit(fire, *self.args)

    @property
    def done(self) -> bool:
        return self._future is not None and self._future.done()

    def result(self) -> LoadResult | None:
        return self._future.result(timeout=600) if self._future is not None else None

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
