"""Every capability's tables on one metadata, for the app, Alembic and test set-up."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

MODEL_MODULES = (
    "cms.accounts.models",
    "cms.content.models",
    "cms.content.published",
    "cms.authoring.models",
    "cms.events.models",
    "cms.webhooks.models",
    "cms.publishing.models",
    "cms.feeds.models",
    "cms.platform.tallies",
)


def load_models() -> MetaData:
    """Import each capability's models (string relationships need them all) and return the metadata."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from cms.platform.models import Base

    return Base.metadata
