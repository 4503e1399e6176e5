"""Role checks on every console route, over plain HTTP on both databases: the table
below names who may use each route, and a route missing from it fails the test. Each
identity (anonymous, the four roles, a partner) calls every route on real records, with
a valid CSRF token, so what answers is the role check and nothing else."""

from __future__ import annotations

import uuid

import pytest

from cms.platform.actors import Role
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import fanout
from cms.webhooks.endpoints import EndpointCache
from cms.webhooks.models import Delivery
from cms.webhooks.policy import policy
from tests.factories import make_app
from tests.helpers import create, post
from tests.helpers import free_port as closed_port  # nothing listens there
from tests.integration.console.conftest import _sign_in, _token

STAFF = ("reader", "writer", "editor", "admin")
WRITERS = ("writer", "editor", "admin")
EDITORS = ("editor", "admin")
ADMINS = ("admin",)
PARTNER = ("partner",)
ANYONE = (*STAFF, "partner")

ACCESS = {
    "console.home": ANYONE,
    "console.logout": ANYONE,
    "console.article_list": WRITERS,
    "console.article": WRITERS,
    "console.upcoming": WRITERS,
    "console.article_publish": EDITORS,
    "console.article_unpublish": EDITORS,
    "console.article_schedule": EDITORS,
    "console.article_schedule_cancel": EDITORS,
    "console.article_embargo_lift": EDITORS,
    "console.ops_overview": ADMINS,
    "console.ops_subscriptions": ADMINS,
    "console.ops_subscription": ADMINS,
    "console.ops_toggle": ADMINS,
    "console.ops_redeliver": ADMINS,
    "console.ops_recover": ADMINS,
    "console.ops_event": ADMINS,
    "console.partner_subscriptions": PARTNER,
    "console.partner_subscription": PARTNER,
    "console.partner_rotate": PARTNER,
    "console.partner_ping": PARTNER,
    "console.partner_replay": PARTNER,
}
PUBLIC = {"console.login", "console.static"}


@pytest.fixture
def records(committed_app, client, keys):
    """An article with a delivery of its event, the newsroom's subscription, and a
    partner with a subscription of its own."""
    admin = keys.auth(Role.ADMIN)
    sub = client.post(
        "/api/v1/subscriptions", json={"url": "https://93.184.215.14/r"}, headers=admin
    ).get_json()
    article = create(client, admin, headline="Routes")
    assert post(client, admin, article["id"], "publish").status_code == 200
    partner = client.post(
        "/api/v1/partners", json={"name": "P", "email": "p@x.example"}, headers=admin
    ).get_json()
    key = client.post(f"/api/v1/partners/{partner['id']}/keys", json={"name": "k"}, headers=admin).get_json()[
        "key"
    ]
    own = client.post(
        "/partner/v1/subscriptions",
        json={"url": "https://93.184.215.14/p"},
        headers={"Authorization": f"Bearer {key}"},
    ).get_json()
    with committed_app.app_context():
        fanout.relay(db.session, utcnow(), policy(committed_app.config), EndpointCache())
        db.session.commit()
        delivery = db.session.query(Delivery).filter_by(subscription_id=uuid.UUID(sub["id"])).one()
        ids = {"delivery_id": delivery.id, "event_id": delivery.event_id}
    return {
        "article_id": article["id"],
        "subscription_id": sub["id"],
        "own": own["id"],
        "partner_key": key,
        **ids,
    }


def _routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console."):
            methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
            out.append((rule, "POST" if "POST" in methods else "GET"))
    return out


def _url(rule, records):
    values = {}
    for arg in rule.arguments:
        if arg == "change":
            values[arg] = "pause"
        elif arg == "subscription_id" and rule.endpoint.startswith("console.partner_"):
            values[arg] = records["own"]
        else:
            values[arg] = records[arg]
    return rule.build(values, append_unknown=False)[1]


def test_every_console_route_is_in_the_table(committed_app):
    endpoints = {rule.endpoint for rule, _ in _routes(committed_app)}
    assert endpoints - PUBLIC == set(ACCESS), "a console route without a role rule, or a stale rule"


@pytest.mark.parametrize("identity", ["anonymous", *STAFF, "partner"])
def test_each_identity_gets_exactly_its_routes(committed_app, client, keys, records, identity):
    if identity == "partner":
        _sign_in(client, records["partner_key"])
    elif identity != "anonymous":
        _sign_in(client, keys.raw[Role(identity)])
    token = _token(client)
    answers = {}
    for rule, method in _routes(committed_app):
        if rule.endpoint in PUBLIC or rule.endpoint == "console.logout":
            continue  # logout last: it ends the session
        url = _url(rule, records)
        r = client.post(url, data={"csrf_token": token}) if method == "POST" else client.get(url)
        answers[rule.endpoint] = r.status_code
        if identity == "anonymous":
            assert r.status_code == 302 and "/console/login" in r.headers["Location"], (
                rule.endpoint,
                r.status_code,
            )
        elif identity in ACCESS[rule.endpoint]:
            assert r.status_code in (200, 302), (identity, rule.endpoint, r.status_code)
        else:
            assert r.status_code == 403, (identity, rule.endpoint, r.status_code)
    assert len(answers) == len(ACCESS) - 1
    if identity != "anonymous":
        assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
        assert client.get("/console/").status_code == 302  # signed out


def test_refusals_are_pages_and_a_lost_database_is_a_503_page(client, keys):
    _sign_in(client, keys.raw[Role.WRITER])
    for path, status, title in (
        ("/console/ops", 403, "Not for this key"),
        ("/console/articles/00000000-0000-0000-0000-0000000000ff", 404, "Not found"),
    ):
        r = client.get(path)
        assert r.status_code == status and r.mimetype == "text/html", path
        assert f"<h1>{title}</h1>" in r.get_data(as_text=True)

    gone = make_app(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere", CMS_BROKER_URL="")
    browser = gone.test_client()
    assert browser.get("/console/login").status_code == 200  # the sign-in page needs no database
    r = browser.post("/console/login", data={"key": "cms_anything", "csrf_token": _token(browser)})
    assert r.status_code == 503 and r.mimetype == "text/html" and r.headers["Retry-After"] == "5"
    assert "Database unavailable" in r.get_data(as_text=True)
