"""Every mapped table, imported in one place so that Alembic and ``create_all`` see the whole schema."""

from digest.corrections.models import Correction, FoldedCorrection
from digest.db import Base
from digest.delivery.circuit import TransportCircuit
from digest.editors.models import Editor
from digest.events.models import WebhookEvent
from digest.ingest.models import FeedSource, Specialty, Summary, SummaryVersion
from digest.integrations.models import ApiKey, WebhookDelivery, WebhookEndpoint
from digest.issues.models import Click, IssuePin, issue_specialties
from digest.ledger.models import (
    CarriedVersion,
    Delivery,
    DigestFlow,
    Issue,
    IssueFigurePoint,
    IssueFigures,
    Selection,
    SelectionItem,
    SummaryFigures,
)
from digest.subscribers.models import ConsentEvent, SignupAttempt, Subscriber, Suppression

__all__ = [
    "ApiKey",
    "Base",
    "CarriedVersion",
    "Click",
    "ConsentEvent",
    "Correction",
    "Delivery",
    "DigestFlow",
    "Editor",
    "FeedSource",
    "FoldedCorrection",
    "Issue",
    "IssueFigurePoint",
    "IssueFigures",
    "IssuePin",
    "Selection",
    "SelectionItem",
    "SignupAttempt",
    "Specialty",
    "Subscriber",
    "Summary",
    "SummaryFigures",
    "SummaryVersion",
    "Suppression",
    "TransportCircuit",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "issue_specialties",
]
