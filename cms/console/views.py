"""The web console (``/console``): server-rendered pages over the same queries as the API.

Security on every page: a strict Content-Security-Policy (no inline script unless it
carries the page's nonce; styles and images from the app only; no framing), a CSRF
token in every form (Flask-WTF; a POST without it is refused), a session cookie as
``cms.console.sessions`` describes. Editors see articles with their history, a
word-level diff of the body and a field diff of the rest, the schedule and embargo.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cms.authoring import articles as articles_queries
from cms.console import auth, paging
from cms.content import reads, representation, versions, worddiff
from cms.platform.actors import Role
from cms.platform.errors import NotFound
from cms.platform.extensions import db
from cms.publishing import embargo, schedule

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static")
csrf = CSRFProtect()
log = logging.getLogger("cms.console")


@bp.before_request
def _guard() -> Any:
    g.nonce = secrets.token_urlsafe(16)
    if request.method == "POST":
        csrf.protect()  # 400 without the form's token
    g.user = auth.current()
    if g.user is None and request.endpoint not in ("console.login", "console.static"):
        return redirect(url_for("console.login", next=request.path))
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    nonce = getattr(g, "nonce", "")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template("console/error.html", title="Form expired", message=error.description), 400


# People read the console: its refusals are pages, not the API's problem documents.
@bp.errorhandler(400)
def _bad_request(_error: Exception) -> tuple[str, int]:
    return render_template("console/error.html", title="Bad request", message=BAD_REQUEST), 400


@bp.errorhandler(403)
def _forbidden(_error: Exception) -> tuple[str, int]:
    return render_template("console/error.html", title="Not for this key", message=FORBIDDEN), 403


@bp.errorhandler(404)
def _missing(_error: Exception) -> tuple[str, int]:
    return render_template("console/error.html", title="Not found", message=MISSING), 404


@bp.errorhandler(OperationalError)
@bp.errorhandler(PoolTimeout)
def _unavailable(error: Exception) -> tuple[str, int, dict[str, str]]:
    with contextlib.suppress(Exception):  # the session's connection may be the dead one
        db.session.rollback()
    log.error("console: database unavailable: %s", getattr(error, "orig", None) or error)
    page = render_template("console/error.html", title="Database unavailable", message=UNAVAILABLE)
    return page, 503, {"Retry-After": "5"}


BAD_REQUEST = "The address is not one this console made (a page position or a value is malformed)."
FORBIDDEN = "The key you signed in with may not open this page."
MISSING = "There is nothing here, or it is not yours to see."
UNAVAILABLE = "The database is busy or unreachable. Nothing was changed; try again in a few seconds."


def _require(role: Role) -> auth.User:
    user: auth.User = g.user
    if not user.can(role):
        abort(403)
    return user


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        user = auth.sign_in(request.form.get("key", ""))
        if user is not None:
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/console/") else url_for("console.home"))
        error = "That key is unknown, revoked, or its partner is disabled."
    return render_template("console/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout() -> Response:
    auth.sign_out()
    return redirect(url_for("console.login"))


@bp.get("/")
def home() -> Response:
    user: auth.User = g.user
    if user.kind == "partner":
        return redirect(url_for("console.partner_subscriptions"))
    if user.can(Role.ADMIN):
        return redirect(url_for("console.ops_overview"))
    if not user.can(Role.WRITER):
        return render_template("console/home.html")
    return redirect(url_for("console.article_list"))


@bp.get("/articles")
def article_list() -> str:
    _require(Role.WRITER)
    state = request.args.get("state") or None
    if state not in (None, *representation.STATES):
        state = None
    filters = reads.ListFilters(
        state=state,
        section=_arg("section"),
        tag=_arg("tag"),
        q=_arg("q"),
    )
    rows, next_key = reads.page(db.session, filters, limit=50, after=paging.after(datetime, uuid.UUID))
    return render_template(
        "console/articles.html",
        rows=rows,
        filters=filters,
        states=representation.STATES,
        older=paging.older("console.article_list", next_key),
    )


def _arg(name: str, longest: int = 200) -> str | None:
    return request.args.get(name, "").strip()[:longest] or None


@bp.get("/articles/<uuid:article_id>")
def article(article_id: uuid.UUID) -> str:
    _require(Role.WRITER)
    try:
        head = articles_queries.get(db.session, article_id)
    except NotFound:
        abort(404)
    latest = head.current_version
    to_n = _number("to", latest, latest)
    from_n = _number("from", max(1, to_n - 1), latest)
    old, new = versions.get(db.session, article_id, from_n), versions.get(db.session, article_id, to_n)
    history, _ = versions.page(db.session, article_id, limit=50, after=None)
    pending, done = schedule.of_article(db.session, article_id)
    embargoes = embargo.history(db.session, article_id)
    return render_template(
        "console/article.html",
        article=head,
        history=history,
        from_n=from_n,
        to_n=to_n,
        body=worddiff.words(
            worddiff.text_of(old.data.get("body") or ""), worddiff.text_of(new.data.get("body") or "")
        ),
        fields=_field_changes(old.data, new.data),
        pending=pending,
        done=done,
        embargoes=embargoes,
    )


def _number(name: str, default: int, latest: int) -> int:
    raw = request.args.get(name, "")
    return min(max(int(raw), 1), latest) if raw.isdigit() and len(raw) < 10 else default


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every field but the body that differs: (name, before, after)."""
    names = [f.name for f in representation.CONTENT if f.name != "body"]
    return [(n, old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]
