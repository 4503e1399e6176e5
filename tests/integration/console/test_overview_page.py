"""The ops overview page over HTTP on both databases: the last hour's figures and
charts (inline SVG, no style or script for the CSP to refuse) and the failing
subscriptions with their last error and next retry; admins only."""

from __future__ import annotations

import random
import re

from cms.platform.actors import Role
from cms.platform.clock import utcnow
from cms.platform.extensions import db
from cms.webhooks import dispatch, fanout, outcomes
from cms.webhooks.endpoints import EndpointCache
from cms.webhooks.policy import DeliveryPolicy
from cms.webhooks.transport.schedule import RetryPolicy
from cms.webhooks.transport.sender import Result
from tests.helpers import create, post
from tests.integration.console.conftest import _sign_in, _token

POLICY = DeliveryPolicy(retry=RetryPolicy(), lease_seconds=60, rng=random.Random(3))


def _deliver(app, answer):
    """Relay and send what is due, each job answered ``answer(job)`` (an HTTP status)."""
    with app.app_context():
        jobs = fanout.relay(db.session, utcnow(), POLICY, EndpointCache()).jobs
        db.session.commit()
        jobs += dispatch.claim(db.session, utcnow(), POLICY)
        results = [Result(j, utcnow(), 9.0, status_code=answer(j), excerpt="") for j in jobs]
        outcomes.record(db.session, results, utcnow(), POLICY)
        db.session.commit()
        return jobs


def test_the_overview_shows_the_last_hour_and_what_is_failing(committed_app, client, keys):
    admin = keys.auth(Role.ADMIN)
    good = client.post("/api/v1/subscriptions", json={"url": "https://93.184.215.14/ok"}, headers=admin)
    bad = client.post("/api/v1/subscriptions", json={"url": "https://93.184.215.14/down"}, headers=admin)
    bad_id = bad.get_json()["id"]
    for i in range(2):
        article = create(client, admin, headline=f"Overview {i}")
        assert post(client, admin, article["id"], "publish").status_code == 200
    jobs = _deliver(committed_app, lambda j: 503 if str(j.subscription_id) == bad_id else 200)
    assert len(jobs) == 4 and good.status_code == 201

    _sign_in(client, keys.raw[Role.ADMIN])
    assert client.get("/console/").headers["Location"] == "/console/ops"
    r = client.get("/console/ops")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "script-src 'nonce-" in r.headers["Content-Security-Policy"]
    assert re.search(r'id="events-total">2<', page)
    assert re.search(r'id="p50">\d+ ms<', page)  # delivered within the same instant: the first bucket
    assert page.count("<svg") == 3 and "<style" not in page and "<script" not in page and "style=" not in page
    failing = re.search(r'<table id="failing">(.*?)</table>', page, re.S).group(1)
    assert "https://93.184.215.14/down" in failing and "HTTP 503" in failing and "/ok" not in failing
    assert re.search(r"<td>2</td>", failing)  # two failures in a row
    # The charts carry the hour's counts: the events line ends at 2, the outcomes show both.
    assert "succeeded" in page and "retrying" in page


def test_the_overview_is_for_admins_only(client, keys):
    for role in (Role.READER, Role.WRITER, Role.EDITOR):
        _sign_in(client, keys.raw[role])
        assert client.get("/console/ops").status_code == 403, role
    client.post("/console/logout", data={"csrf_token": _token(client, "/console/articles")})
    assert client.get("/console/ops").status_code == 302
