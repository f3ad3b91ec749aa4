"""Celery app and tasks. ``celery -A workers worker`` finds the app as ``workers.celery``."""

from workers.app import celery_app as celery

__all__ = ["celery"]
