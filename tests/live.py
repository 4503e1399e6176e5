"""The app behind a real HTTP server on loopback (werkzeug, threaded), on a committed
database, driven with ``requests``: the partner tests go over real HTTP.

``Live.partner()`` makes a partner with its own key; giving each test's partner a
section of its own keeps tests apart on a shared database.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import make_server

from cms.accounts import keys as api_keys
from cms.platform.actors import Role
from cms.platform.extensions import db
from tests.helpers import seed_fields


@dataclass
class Partner:
    id: str
    key: str
    live: Live
    section: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.live.http.get(self.live.url + path, headers=headers, timeout=30, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.live.http.request(method, self.live.url + path, headers=headers, timeout=30, **kwargs)


@dataclass
class Live:
    app: Flask
    url: str = ""
    admin_key: str = ""
    http: requests.Session = field(default_factory=requests.Session)
    _server: Any = None
    _thread: threading.Thread | None = None

    def start(self) -> Live:
        with self.app.app_context():
            _key, self.admin_key = api_keys.create(db.session, name="live admin", role=Role.ADMIN)
            db.session.commit()
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def close(self) -> None:
        self.app.extensions["cms_projection_cache"].stop()
        self._server.shutdown()
        self._server.server_close()
        self.http.close()
        with self.app.app_context():
            db.engine.dispose()

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def api(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> requests.Response:
        """An admin call to ``/api/v1``; ``expect`` asserts the status."""
        headers = {**self.admin, **kwargs.pop("headers", {})}
        response = self.http.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )
        if expect is not None:
            assert response.status_code == expect, (response.status_code, response.text[:500])
        return response

    def partner(self, **fields: Any) -> Partner:
        """A partner with its own key; by default it sees one fresh section only."""
        section = fields.pop("section", None)
        if section is None and not {"sections", "tags", "languages"} & fields.keys():
            section = f"desk-{uuid.uuid4().hex[:10]}"
            fields["sections"] = [section]
        body = {"name": f"Partner {uuid.uuid4().hex[:6]}", "email": "dev@partner.example", **fields}
        created = self.api("POST", "/partners", 201, json=body).json()
        key = self.api("POST", f"/partners/{created['id']}/keys", 201, json={"name": "main"}).json()
        return Partner(id=created["id"], key=key["key"], live=self, section=section)

    def article(self, publish: bool = True, **fields: Any) -> dict[str, Any]:
        article = self.api("POST", "/articles", 201, json={**seed_fields(), **fields}).json()
        if publish:
            self.api("POST", f"/articles/{article['id']}/publish", 200)
        return article

    def relay(self) -> int:
        """Fan the outbox out into deliveries, as a worker's relay does (nothing is sent)."""
        from cms.platform.clock import utcnow
        from cms.webhooks import fanout
        from cms.webhooks.endpoints import EndpointCache
        from cms.webhooks.policy import policy as policy_from_config

        written = 0
        with self.app.app_context():
            policy = policy_from_config(self.app.config)
            while (done := fanout.relay(db.session, utcnow(), policy, EndpointCache())).event_ids:
                db.session.commit()
                written += done.deliveries
            db.session.commit()
        return written

    def ready(self) -> list[Any]:
        """Relay, then claim: every job that may be sent now (nothing is sent)."""
        from cms.platform.clock import utcnow
        from cms.webhooks import fanout
        from cms.webhooks.endpoints import EndpointCache
        from cms.webhooks.policy import policy as policy_from_config

        jobs: list[Any] = []
        with self.app.app_context():
            policy = policy_from_config(self.app.config)
            while (done := fanout.relay(db.session, utcnow(), policy, EndpointCache())).event_ids:
                db.session.commit()
                jobs += done.jobs
            db.session.commit()
        return jobs + self.claim()

    def claim(self) -> list[Any]:
        """Claim what may be sent now, as the sweep does (nothing is sent)."""
        from cms.platform.clock import utcnow
        from cms.webhooks import dispatch
        from cms.webhooks.policy import policy as policy_from_config

        with self.app.app_context():
            jobs = dispatch.claim(db.session, utcnow(), policy_from_config(self.app.config))
            db.session.commit()
        return jobs

    def succeed(self, jobs: list[Any]) -> None:
        """Record each job as delivered (2xx), as the engine does after sending it."""
        from cms.platform.clock import utcnow
        from cms.webhooks import outcomes
        from cms.webhooks.policy import policy as policy_from_config
        from cms.webhooks.transport.sender import Result

        with self.app.app_context():
            now = utcnow()
            results = [Result(job, now, 5.0, status_code=200, error=None, excerpt="{}") for job in jobs]
            outcomes.record(db.session, results, now, policy_from_config(self.app.config))
            db.session.commit()

    def fire(self) -> list[Any]:
        """Run the scheduled actions that are due, as the worker's scheduler task does."""
        from cms.publishing import scheduler

        with self.app.app_context():
            return scheduler.run_due(db.session, grace_seconds=scheduler.grace(self.app.config))

    def act(self, article_id: str, action: str, **body: Any) -> dict[str, Any]:
        return self.api("POST", f"/articles/{article_id}/{action}", 200, json=body).json()

    def save_draft(self, article_id: str, **fields: Any) -> dict[str, Any]:
        etag = self.api("GET", f"/articles/{article_id}", 200).headers["ETag"]
        return self.api(
            "PATCH", f"/articles/{article_id}", 200, json=fields, headers={"If-Match": etag}
        ).json()
