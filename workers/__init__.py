"""Celery app (``celery -A workers worker``). Webhook delivery arrives with the next issue."""
