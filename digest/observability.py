"""Logs, metrics and health checks: what an operator watches.

Logging: one handler on the root logger, plain text or one JSON object per line
(``DIGEST_LOG_FORMAT=json``), at ``DIGEST_LOG_LEVEL``; ``extra={...}`` fields become JSON keys.

Metrics (Prometheus): ``digest_messages_sent_total{transport}``,
``digest_messages_failed_total{transport,kind}``, ``digest_send_seconds{transport}`` (one transport
call, i.e. one batch), ``digest_queue_depth{queue}`` (read from Redis at scrape time) and
``digest_send_rate`` (the shared send rate now in force, +Inf while unlimited: lower than
``DIGEST_SEND_RATE`` after the transport throttled). Messages
are sent by worker processes (and their prefork children), not by the web process that serves
``/metrics``, so the counters use prometheus_client's multiprocess mode: every process writes its
values to files in ``DIGEST_METRICS_DIR`` and the exporter adds them up when scraped. The directory
is per host: each machine that runs workers exports its own (docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import redis
from kombu import Connection
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from digest.config import Settings
from digest.delivery.circuit import CircuitState, TransportCircuit
from digest.delivery.transport import Failure, SendResult

log = logging.getLogger(__name__)

# -- logging ----------------------------------------------------------------------------------------
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "digest"
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any ``extra`` fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS and not k.startswith("_")})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


def setup_logging(settings: Settings, level: int | str | None = None) -> None:
    """Install (or replace) digest's handler on the root logger; safe to call more than once.

    ``level`` overrides ``DIGEST_LOG_LEVEL`` (the CLI raises it for one-shot commands).
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level if level is not None else settings.log_level)


# -- metrics ----------------------------------------------------------------------------------------
QUEUES = ("celery",)  # Celery's default queue, the one digest's tasks use
_KOMBU_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")  # kombu's Redis keys per priority step


@dataclass(frozen=True)
class SendMetrics:
    """The send counters of this process, written to the multiprocess directory."""

    directory: Path
    sent: Counter
    failed: Counter
    seconds: Histogram

    def record(self, transport: str, seconds: float, results: Sequence[SendResult]) -> None:
        """One transport call: its duration, and per message accepted or failed (bounce/permanent/transient)."""
        self.seconds.labels(transport).observe(seconds)
        accepted = sum(1 for r in results if r.accepted)
        if accepted:
            self.sent.labels(transport).inc(accepted)
        for result in results:
            if not result.accepted:
                self.failed.labels(transport, _FAILURE_KINDS[result.failure or Failure.TEMPORARY]).inc()


# ``kind`` label per failure class: the first three names are the ones dashboards already use.
_FAILURE_KINDS = {
    Failure.RECIPIENT: "bounce",
    Failure.MESSAGE: "permanent",
    Failure.TEMPORARY: "transient",
    Failure.THROTTLED: "throttled",
    Failure.CONNECTION: "connection",
}


def _process_identifier() -> str:
    """Names this process's metric files: host name and pid, because containers on one host share
    the directory (a volume) and each has its own pid 1, 2, ... (no ``_``: it separates file name parts)."""
    return f"{socket.gethostname()}-{os.getpid()}".replace("_", "-")


_metrics: SendMetrics | None = None
_metrics_lock = threading.Lock()


def send_metrics(directory: Path) -> SendMetrics:
    """This process's send metrics, writing to ``directory``.

    prometheus_client keeps the multiprocess files per process and reads their directory from
    ``PROMETHEUS_MULTIPROC_DIR``, so the directory is set here, once per process, before the first
    metric exists. A process asked for a second directory keeps writing to the first (and says so).
    """
    global _metrics
    with _metrics_lock:
        if _metrics is not None:
            if _metrics.directory != directory.resolve():
                log.warning("metrics already go to %s in this process; ignoring %s", _metrics.directory, directory)
            return _metrics
        directory = directory.resolve()
        directory.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)
        _metrics = SendMetrics(
            directory=directory,
            sent=Counter("digest_messages_sent", "Messages accepted by the transport", ["transport"], registry=None),
            failed=Counter(
                "digest_messages_failed",
                "Messages the transport did not accept, by kind: bounce, permanent, transient (retried)",
                ["transport", "kind"],
                registry=None,
            ),
            seconds=Histogram(
                "digest_send_seconds",
                "Duration of one transport call (one batch; one message for SMTP)",
                ["transport"],
                registry=None,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            ),
        )
        return _metrics


class QueueDepthCollector(Collector):
    """``digest_queue_depth``: tasks waiting in the Redis broker, read when Prometheus scrapes."""

    def __init__(self, broker_url: str, queues: Sequence[str] = QUEUES):
        self.broker_url = broker_url
        self.queues = tuple(queues)

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("digest_queue_depth", "Tasks waiting in the broker queue", labels=["queue"])
        client = redis.Redis.from_url(self.broker_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            for queue in self.queues:
                gauge.add_metric([queue], sum(client.llen(queue + suffix) for suffix in _KOMBU_PRIORITY_SUFFIXES))
        except redis.RedisError as exc:
            log.warning("queue depth not available: %s", exc)
            return
        finally:
            client.close()
        yield gauge


class CircuitCollector(Collector):
    """``digest_transport_paused{transport,reason}``: 1 while a transport's circuit is open (sending
    paused by a connection or account failure), read from the database at scrape time."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "digest_transport_paused",
            "1 while sending is paused because the transport's connection or account fails",
            labels=["transport", "reason"],
        )
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(TransportCircuit.transport, TransportCircuit.state, TransportCircuit.reason))
                for transport, state, reason in rows:
                    is_open = state == CircuitState.OPEN
                    gauge.add_metric([transport, (reason or "")[:200] if is_open else ""], 1.0 if is_open else 0.0)
        except SQLAlchemyError as exc:
            log.warning("transport circuit not available: %s", exc)
            return
        yield gauge


class SendRateCollector(Collector):
    """``digest_send_rate``: messages/s every worker together may send now (+Inf: unlimited), read
    from the shared rate at scrape time; below ``DIGEST_SEND_RATE`` while it recovers from a throttle."""

    def __init__(self, current: Callable[[], float | None]):
        self.current = current

    def collect(self) -> Iterator[Metric]:
        try:
            rate = self.current()
        except redis.RedisError as exc:
            log.warning("send rate not available: %s", exc)
            return
        yield GaugeMetricFamily(
            "digest_send_rate",
            "Messages per second all workers may send now (+Inf: unlimited); cut when the transport throttles",
            value=float("inf") if rate is None else rate,
        )


def scrape_registry(
    directory: Path,
    broker_url: str | None,
    engine: Engine | None = None,
    send_rate: Callable[[], float | None] | None = None,
) -> CollectorRegistry:
    """A registry that adds up every process's files in ``directory`` and, with a Redis broker, the
    queue depth; with a database, the transport circuits; with ``send_rate``, the shared rate."""
    registry = CollectorRegistry()
    directory.mkdir(parents=True, exist_ok=True)
    MultiProcessCollector(registry, path=str(directory))
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        registry.register(QueueDepthCollector(broker_url))
    if engine is not None:
        registry.register(CircuitCollector(engine))
    if send_rate is not None:
        registry.register(SendRateCollector(send_rate))
    return registry


def exposition(
    directory: Path,
    broker_url: str | None,
    engine: Engine | None = None,
    send_rate: Callable[[], float | None] | None = None,
) -> bytes:
    """The Prometheus text format for one scrape."""
    return generate_latest(scrape_registry(directory, broker_url, engine, send_rate))


# -- health -----------------------------------------------------------------------------------------
OK = "ok"
NOT_CONFIGURED = "not configured"


def check_database(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not answering"
        log.warning("health check: database: %s", exc)
        return f"unavailable: {type(exc).__name__}"
    return OK


def check_broker(broker_url: str | None) -> str:
    """Open a channel through kombu, the transport Celery sends tasks with: a broker that answers a
    plain ping is not enough when the transport itself cannot load or connect (a missing module of
    kombu's Redis transport once left /healthz "ok" while every task failed to queue)."""
    if not broker_url:
        return NOT_CONFIGURED
    try:
        with Connection(broker_url, connect_timeout=2, transport_options={"socket_timeout": 2}) as conn:
            conn.connect()
            conn.default_channel  # noqa: B018 (creating the channel is the check: Redis's pings the server)
    except Exception as exc:  # an import, connection or protocol error: the tasks could not be queued
        log.warning("health check: broker: %s: %s", type(exc).__name__, exc)
        return f"unavailable: {type(exc).__name__}"
    return OK


def health(engine: Engine, broker_url: str | None) -> tuple[bool, dict[str, str]]:
    """Whether everything answers, and the state of each part by name."""
    parts = {"database": check_database(engine), "broker": check_broker(broker_url)}
    return all(v in (OK, NOT_CONFIGURED) for v in parts.values()), parts
