"""Probes for orchestrators: ``/healthz`` (the process answers) and ``/readyz``
(database reachable, migrations at head, broker reachable; 503 with the reasons)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from cms.platform import health
from cms.platform.extensions import db
from cms.platform.http.problems import problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    migrations_dir = current_app.extensions["migrate"].directory
    checks = {
        "database": health.database(db.session),
        "migrations": health.migrations(db.session, migrations_dir),
        "broker": health.broker(current_app.config["CMS_BROKER_URL"]),
    }
    details = {name: detail for name, (_ok, detail) in checks.items()}
    failing = [name for name, (ok, _detail) in checks.items() if not ok]
    if failing:
        return problem(
            503,
            "Not ready",
            "Not ready: " + "; ".join(f"{name} {details[name]}" for name in failing),
            code="not-ready",
            checks=details,
            headers={"Retry-After": "5"},
        )
    return jsonify({"status": "ready", "checks": details})
