"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from cms.models.api_keys import ApiKey, Role
from cms.models.articles import Article, ArticleState, ArticleTag, ArticleVersion
from cms.models.base import Base
from cms.models.events import OutboxEvent
from cms.models.idempotency import IdempotencyRecord

__all__ = [
    "ApiKey",
    "Article",
    "ArticleState",
    "ArticleTag",
    "ArticleVersion",
    "Base",
    "IdempotencyRecord",
    "OutboxEvent",
    "Role",
]
