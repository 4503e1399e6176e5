"""Outbox: events recorded in the caller's transaction."""
