"""Celery workers: ``celery -A workers worker`` and ``celery -A workers beat``.

Importing this package builds the Celery object from ``CMS_*`` settings (no
connections are made); the Flask app, database engines, HTTP sender and
recorder are created lazily inside each worker process.
"""

from workers.celery_app import create_celery

app = create_celery()

__all__ = ["app", "create_celery"]
