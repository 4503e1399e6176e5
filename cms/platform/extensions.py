"""Extension objects, created unbound; ``create_app`` binds them."""

from __future__ import annotations

from typing import Any

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, Engine

from cms.platform.db import engine_for
from cms.platform.models import Base


class Session(FlaskSession):
    """``db.session``: requests that cannot write read in autocommit on PostgreSQL
    (``cms.platform.db.engine_for``); everything else as Flask-SQLAlchemy does."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: Engine | Connection | None = None,
        **kw: Any,
    ) -> Engine | Connection:
        chosen = super().get_bind(mapper=mapper, clause=clause, bind=bind, **kw)
        return engine_for(chosen) if isinstance(chosen, Engine) else chosen


# expire_on_commit=False: responses are dumped after the commit without
# reloading every attribute.
# Models subclass ``cms.platform.models.Base`` (no Flask import); sharing its metadata
# is all Flask-SQLAlchemy and Alembic need.
db = SQLAlchemy(metadata=Base.metadata, session_options={"class_": Session, "expire_on_commit": False})
migrate = Migrate(render_as_batch=True, compare_type=True)
