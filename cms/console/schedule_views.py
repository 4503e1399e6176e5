"""What is coming next (newsroom staff): scheduled publishes, unpublishes and embargo
lifts by time (and the ones that could not run, with why), and the embargoes in force,
the next to lift first. The same queries as ``GET /api/v1/scheduled``."""

from __future__ import annotations

from flask import abort, g, render_template

from cms.console import auth
from cms.console.views import bp
from cms.platform.actors import Role
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.publishing import embargo, schedule


@bp.get("/schedule")
def upcoming() -> str:
    user: auth.User = g.user
    if not user.can(Role.WRITER):
        abort(403)
    actions, more = schedule.page(db.session, schedule.ListQuery(limit=100))
    return render_template(
        "console/schedule.html",
        actions=actions,
        more=more is not None,
        embargoes=embargo.in_force(db.session),
        now=utcnow(),
    )
