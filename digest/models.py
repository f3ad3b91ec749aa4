"""Every mapped table, imported in one place so that Alembic and ``create_all`` see the whole schema."""

from digest.db import Base
from digest.delivery.models import Delivery, DeliveryItem, Issue
from digest.editors.models import Editor
from digest.events.models import Suppression
from digest.ingest.models import Specialty, Summary
from digest.issues.models import Click, IssuePin, issue_specialties
from digest.subscribers.models import Subscriber

__all__ = [
    "Base",
    "Click",
    "Delivery",
    "DeliveryItem",
    "Editor",
    "Issue",
    "IssuePin",
    "Specialty",
    "Subscriber",
    "Summary",
    "Suppression",
    "issue_specialties",
]
