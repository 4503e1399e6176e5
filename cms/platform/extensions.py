"""Extension objects, created unbound; ``create_app`` binds them."""

from __future__ import annotations

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from cms.platform.models import Base

# expire_on_commit=False: responses are dumped after the commit without
# reloading every attribute.
# Models subclass ``cms.platform.models.Base`` (no Flask import); sharing its metadata
# is all Flask-SQLAlchemy and Alembic need.
db = SQLAlchemy(metadata=Base.metadata, session_options={"expire_on_commit": False})
migrate = Migrate(render_as_batch=True, compare_type=True)
