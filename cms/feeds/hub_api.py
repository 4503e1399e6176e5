"""The built-in WebSub hub's endpoint (``POST /websub/hub``, form-encoded, as W3C WebSub
defines it; outside the JSON API's OpenAPI document).

A request is checked at the door (the topic must be one of our feeds, the callback must
pass the webhooks' SSRF policy; otherwise a problem document) and recorded; a worker
then verifies the subscriber's intent (Flask-WebSub) and answers 202 as the spec says.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from cms.feeds import topics, websub
from cms.platform import uow
from cms.platform.extensions import db
from cms.platform.http.problems import ApiError
from cms.webhooks.subscriptions import url_policy

bp = Blueprint("websub_hub", __name__)

DAY = 86_400
MIN_LEASE, DEFAULT_LEASE, MAX_LEASE = 60, 10 * DAY, 31 * DAY


def _bad(detail: str, status: int = 400) -> ApiError:
    return ApiError(status, "bad-websub-request", "Bad WebSub request", detail)


def _lease() -> int:
    raw = request.form.get("hub.lease_seconds")
    if raw is None or raw == "":
        return DEFAULT_LEASE
    if not raw.isdigit() or len(raw) > 10:
        raise _bad("hub.lease_seconds must be a whole number of seconds.")
    return min(max(int(raw), MIN_LEASE), MAX_LEASE)


@bp.post("/websub/hub")
def hub() -> Response:
    if current_app.config["CMS_WEBSUB_HUB"]:
        raise ApiError(404, "not-found", "Not found", "This server's feeds use an external hub.")
    mode, topic_url, callback, secret = _form()
    lease = _lease()
    topic = topics.parse(topic_url)
    cache = current_app.extensions["cms_feed_tokens"]
    if topic is None or topics.resolve(db.session, topic, current_app.config, cache) is None:
        raise _bad('hub.topic is not a feed of this server (use a feed\'s rel="self" link).', 422)
    if (why := websub.callback_refused(callback, url_policy(current_app.config))) is not None:
        raise _bad(f"hub.callback cannot be called: {why}", 422)
    with uow.transaction(db.session):
        websub.request(db.session, mode, topic_url, callback, lease, secret)
        uow.after_commit(db.session, "websub")  # verify now rather than at beat's next run
    return Response(f"Request received: {mode}\n", status=202, content_type="text/plain")


def _form() -> tuple[str, str, str, str | None]:
    """hub.mode, hub.topic, hub.callback and hub.secret, each checked (400 otherwise)."""
    form = request.form
    mode, topic_url, callback = form.get("hub.mode"), form.get("hub.topic"), form.get("hub.callback")
    if mode not in ("subscribe", "unsubscribe"):
        raise _bad("hub.mode must be 'subscribe' or 'unsubscribe'.")
    if not topic_url or not callback or len(topic_url) > 2000 or len(callback) > 2000:
        raise _bad("hub.topic and hub.callback are required (URLs of at most 2,000 characters).")
    secret = form.get("hub.secret") or None
    if secret is not None and len(secret.encode()) >= 200:
        raise _bad("hub.secret must be shorter than 200 bytes.")
    return mode, topic_url, callback, secret
