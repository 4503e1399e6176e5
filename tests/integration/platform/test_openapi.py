"""Property-based run over the OpenAPI document: no 5xx, every response matches the spec."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from cms.app import create_app
from cms.platform.actors import Role
from tests.helpers import create, patch, post


class CurrentApp:
    """A WSGI app that forwards to the app of the running test (one per backend).

    Schemathesis binds a schema to one app at collection time; the database
    backends are fixtures, so the binding is made indirect.
    """

    def __init__(self) -> None:
        # The document depends only on the code: serve it from an app with no database.
        self.target: Any = create_app({"CMS_DATABASE_URL": "sqlite:///:memory:", "CMS_SECRET_KEY": "spec"})

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.target(environ, start_response)


CURRENT = CurrentApp()
# Every check, none excluded. Three take statuses beyond Schemathesis's defaults, each
# the one HTTP defines for the case: a missing If-Match is 428 Precondition Required
# (RFC 6585); a well-formed request can meet a state that refuses it, 412 for a stale
# If-Match (as 409 for a conflict, already a default); and 412 rejects an If-Match
# that is not one of our ETags. Negative data that makes the URL too long for us
# (hypothesis found a 4 KB query) is rejected with 414, as documented on every path.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "missing_required_header": {
                "expected-statuses": ["400", "401", "403", "406", "415", "422", "428"]
            },
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "429"]
            },
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "412",
                    "414",
                    "415",
                    "422",
                    "428",
                ]
            },
        }
    }
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", CURRENT, config=CONFIG)
_turn = itertools.count()
TIMES = ("publish_at", "embargo_until", "unpublish_at")
_token: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class BearerKey:
    """The admin key of the running test, applied the way Schemathesis expects
    (so its negative cases can drop it and its auth checks know about it)."""

    def get(self, case: Any, context: Any) -> str:
        if case.path.startswith(("/content/", "/partner/")):
            return _token.get("partner", "cmsp_collection-time-placeholder")
        return _token.get("admin", "cms_collection-time-placeholder")

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _positive(case: Any) -> bool:
    meta = getattr(case, "_meta", None)
    return meta is not None and str(meta.generation.mode) == "positive"


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, app, client, keys):
    CURRENT.target = app
    # Random UUIDs would only ever reach 404s: every other case targets a real
    # article (with two versions), and half of those send its current ETag.
    turn = next(_turn)
    _token["admin"] = keys.raw[Role.ADMIN]
    if case.path.startswith(("/content/", "/partner/")):
        _token["partner"] = _partner_key(client, keys)
    if case.headers and case.headers.get("Authorization", "").startswith("Bearer "):
        # Schemathesis applied the auth when it generated the case, with the key of the
        # example before (rolled back with its test): this example's key.
        case.headers["Authorization"] = f"Bearer {BearerKey().get(case, None)}"
    if _positive(case) and "article_id" in (case.path_parameters or {}) and turn % 2 == 0:
        article = create(client, keys.auth(Role.ADMIN), headline="Fuzz target")
        article = patch(client, keys.auth(Role.ADMIN), article, headline="Fuzz target v2")
        if case.path.startswith("/content/"):  # partners see published articles only
            post(client, keys.auth(Role.ADMIN), article["id"], "publish")
        case.path_parameters["article_id"] = article["id"]
        if "number" in case.path_parameters:
            case.path_parameters["number"] = 1 + turn % 4 // 2
        if case.headers and "If-Match" in case.headers and turn % 4 == 0:
            case.headers["If-Match"] = '"v2"'
    if (
        _positive(case)
        and isinstance(case.body, dict)
        and "url" in case.body
        and "subscriptions" in case.path
    ):
        # A drawn host name rarely resolves, and the SSRF guard refuses what does not
        # resolve to a public address (422, checked when saved): subscribe a public one.
        case.body["url"] = f"https://93.184.215.14/hooks/{turn}"
    if _positive(case) and isinstance(case.body, dict) and TIMES & case.body.keys():
        # Schedules and embargoes must lie ahead, in order (publish, lift, unpublish): the
        # present is state no document can describe (a past time is 422, as it should be).
        ahead = datetime.now(UTC) + timedelta(days=1)
        for hours, name in enumerate(TIMES):
            if name in case.body:
                case.body[name] = (ahead + timedelta(hours=hours)).isoformat()
    if _positive(case) and case.query and "after" in case.query and case.path.endswith("/changes"):
        # A cursor of the right shape is still refused unless this partner was given it
        # (its signature): resume from a real one.
        page = client.get("/content/v1/changes", headers={"Authorization": f"Bearer {_token['partner']}"})
        case.query["after"] = page.get_json()["next"]
    if _positive(case) and case.headers and case.headers.get("Idempotency-Key"):
        # A key reused with another body is refused (422, as the Idempotency-Key draft
        # says); generated keys collide across cases, so each case gets its own.
        case.headers["Idempotency-Key"] = f"{case.headers['Idempotency-Key'][:200]}-{turn}"
    # Every check runs (CONFIG says which statuses HTTP itself gives them).
    case.call_and_validate()


def _partner_key(client: Any, keys: Any) -> str:
    """A partner of the running test with its key (partner routes take no other)."""
    admin = keys.auth(Role.ADMIN)
    body = {"name": "Fuzz", "email": "fuzz@partner.example"}
    partner = client.post("/api/v1/partners", json=body, headers=admin).get_json()
    key = client.post(f"/api/v1/partners/{partner['id']}/keys", json={"name": "fuzz"}, headers=admin)
    return str(key.get_json()["key"])
