"""Every mapped table, imported in one place so that Alembic and ``create_all`` see the whole schema."""

from digest.db import Base
from digest.editors.models import Editor
from digest.events.models import WebhookEvent
from digest.ingest.models import FeedSource, Specialty, Summary
from digest.integrations.models import ApiKey, WebhookDelivery, WebhookEndpoint
from digest.issues.models import Click, IssuePin, issue_specialties
from digest.ledger.models import Delivery, Issue, Selection, SelectionItem
from digest.subscribers.models import ConsentEvent, SignupAttempt, Subscriber, Suppression

__all__ = [
    "ApiKey",
    "Base",
    "Click",
    "ConsentEvent",
    "Delivery",
    "Editor",
    "FeedSource",
    "Issue",
    "IssuePin",
    "Selection",
    "SelectionItem",
    "SignupAttempt",
    "Specialty",
    "Subscriber",
    "Summary",
    "Suppression",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "issue_specialties",
]
