"""Every mapped table, imported in one place so that Alembic and ``create_all`` see the whole schema."""

from digest.db import Base
from digest.editors.models import Editor
from digest.events.models import Suppression, WebhookEvent
from digest.ingest.models import FeedSource, Specialty, Summary
from digest.issues.models import Click, IssuePin, issue_specialties
from digest.ledger.models import (
    Delivery,
    Issue,
    IssueFigurePoint,
    IssueFigures,
    Selection,
    SelectionItem,
    SummaryFigures,
)
from digest.subscribers.models import SignupAttempt, Subscriber

__all__ = [
    "Base",
    "Click",
    "Delivery",
    "Editor",
    "FeedSource",
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
    "Suppression",
    "WebhookEvent",
    "issue_specialties",
]
