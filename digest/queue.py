"""Where work is handed over: to Celery workers through the broker, or done in this process.

``Services.queue`` is one of these, chosen by ``wiring.build_services`` from ``DIGEST_BROKER_URL``:
the web app, the CLI and dispatch hand work to it and never import the worker module. With a broker,
tasks are sent *by name* (the names below) and ``celery -A workers worker`` runs them
(``workers/tasks.py`` declares them under the same names); without one, the same service calls run
here, and rows that meet a transient error stay pending for the next run (there is no retry task).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from celery import Celery

from digest.config import Settings
from digest.delivery.confirmation import ConfirmationMailer
from digest.delivery.service import DeliveryService
from digest.delivery.transport import TransientError
from digest.integrations.webhooks import WebhookSender

log = logging.getLogger(__name__)

DELIVER_CHUNK = "workers.tasks.deliver_chunk"
SEND_CONFIRMATION = "workers.tasks.send_confirmation"
DISPATCH_DUE = "workers.tasks.dispatch_due"
POLL_FEEDS = "workers.tasks.poll_feeds"
DELIVER_WEBHOOKS = "workers.tasks.deliver_webhooks"

VISIBILITY_TIMEOUT = 3600  # seconds; longer than any task (a chunk takes seconds) and any retry countdown


def celery_config(settings: Settings) -> dict[str, Any]:
    """What the producers here and the worker app (workers/app.py) agree on: broker, serialisation, acks."""
    return {
        # Eager tasks still take a producer from the pool: a URL with a host keeps kombu from warning
        # "No hostname was supplied" on every command that runs tasks in-process.
        "broker_url": settings.broker_url or "memory://localhost/",
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        "broker_connection_retry_on_startup": True,
    }


class TaskQueue(Protocol):
    """Work handed over after the caller's commit: ids only, never content."""

    def deliver_chunk(self, delivery_ids: list[int]) -> None:
        """Send these ledger rows (a few hundred at most)."""

    def send_confirmation(self, subscriber_id: int) -> None:
        """Send the double opt-in email to this subscriber."""

    def deliver_webhooks(self) -> None:
        """Send the outgoing webhook events that are due (queued after a commit that emitted some)."""

    def close(self) -> None:
        """Release the broker connections, if any."""


class BrokerQueue:
    """Tasks sent by name to the broker, for the worker processes."""

    def __init__(self, settings: Settings) -> None:
        self.app = Celery("digest-producer", set_as_current=False)
        self.app.conf.update(celery_config(settings))

    def deliver_chunk(self, delivery_ids: list[int]) -> None:
        self.app.send_task(DELIVER_CHUNK, args=[delivery_ids])

    def send_confirmation(self, subscriber_id: int) -> None:
        self.app.send_task(SEND_CONFIRMATION, args=[subscriber_id])

    def deliver_webhooks(self) -> None:
        self.app.send_task(DELIVER_WEBHOOKS)

    def dispatch_due(self) -> str:
        """Hand the planning over to the workers; returns the task id."""
        return str(self.app.send_task(DISPATCH_DUE).id)

    def close(self) -> None:
        self.app.close()


class InProcessQueue:
    """No broker: the work is done at once, in this process, by the same services the tasks call."""

    def __init__(self, delivery: DeliveryService, confirmations: ConfirmationMailer, webhooks: WebhookSender) -> None:
        self.delivery = delivery
        self.confirmations = confirmations
        self.webhooks = webhooks

    def deliver_chunk(self, delivery_ids: list[int]) -> None:
        report = self.delivery.deliver(delivery_ids)
        left = len(delivery_ids)
        while report.requeue and len(report.requeue) < left:  # the database connection was lost: go on
            left = len(report.requeue)
            report = self.delivery.deliver(report.requeue)
        if report.retry:
            log.warning("%d deliveries hit transient errors; they stay pending", len(report.retry))
        if report.throttled:
            log.warning(
                "%d deliveries wait: the transport asked us to slow down for %.0f s", len(report.throttled), report.wait
            )

    def send_confirmation(self, subscriber_id: int) -> None:
        try:
            self.confirmations.send(subscriber_id)
        except TransientError as exc:
            log.warning("confirmation for subscriber %d not sent: %s", subscriber_id, exc)

    def deliver_webhooks(self) -> None:
        """One pass; what fails waits for the next pass (the next event, or ``digest webhooks send``)."""
        self.webhooks.deliver_due()

    def close(self) -> None:
        return None
