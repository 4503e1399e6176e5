"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from cms.models.api_keys import ApiKey, Role
from cms.models.articles import Article, ArticleState, ArticleTag, ArticleVersion, filter_key
from cms.models.base import Base
from cms.models.deliveries import (
    OPEN_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryCount,
    DeliveryStatus,
    EventPayload,
)
from cms.models.events import OutboxEvent
from cms.models.idempotency import IdempotencyRecord
from cms.models.subscriptions import PayloadFormat, Subscription, SubscriptionChanges

__all__ = [
    "OPEN_STATUSES",
    "ApiKey",
    "Article",
    "ArticleState",
    "ArticleTag",
    "ArticleVersion",
    "Base",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryCount",
    "DeliveryStatus",
    "EventPayload",
    "IdempotencyRecord",
    "OutboxEvent",
    "PayloadFormat",
    "Role",
    "Subscription",
    "SubscriptionChanges",
    "filter_key",
]
