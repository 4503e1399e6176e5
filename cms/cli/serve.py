"""Serving: ``cms run`` (the API alone) and ``cms up`` (everything on one machine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from cms.broker import QUEUES
from cms.extensions import db

LOOPBACK = "127.0.0.0/8,::1/128"


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: CMS_PORT (8000).")
@with_appcontext
def run_command(host: str, port: int | None) -> None:
    """Run the development server (use gunicorn cms.wsgi:app in production)."""
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["CMS_PORT"]
    click.echo(f"API on http://{host}:{port}/api/v1  (OpenAPI: /api/v1/openapi.json)")
    run_simple(host, port, app, threaded=True, use_reloader=False)


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: CMS_PORT (8000).")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Worker processes.")
@with_appcontext
def up_command(host: str, port: int | None, concurrency: int) -> None:
    """Run everything on this machine: migrations, the API, a Celery worker and beat.

    Uses the settings as given; with the defaults that is the embedded mode:
    SQLite and a SQLite broker under ./var, no Redis, no PostgreSQL. Webhooks
    may reach loopback unless CMS_WEBHOOK_ALLOWED_NETWORKS says otherwise.
    Ctrl-C stops everything; data stays in ./var for the next start.
    """
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from cms.cli.keys import first_admin_key

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["CMS_PORT"]
    upgrade()
    key = first_admin_key(app.config["CMS_ADMIN_KEY"])
    if key and app.config["CMS_ADMIN_KEY"]:
        key = None  # provisioned by the operator: nothing to show
    db.session.remove()  # the command's own session must not hold a transaction while serving

    env = dict(os.environ)
    env["CMS_DATABASE_URL"] = app.config["CMS_DATABASE_URL"]
    env["CMS_BROKER_URL"] = app.config["CMS_BROKER_URL"]
    env.setdefault("CMS_WEBHOOK_ALLOWED_NETWORKS", LOOPBACK)
    app.config["CMS_WEBHOOK_ALLOWED_NETWORKS"] = env["CMS_WEBHOOK_ALLOWED_NETWORKS"]
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    children = {
        "worker": subprocess.Popen(
            [*celery, "worker", "--loglevel=INFO", f"--concurrency={concurrency}", "-Q", ",".join(QUEUES)],
            env=env,
        ),
        "beat": subprocess.Popen([*celery, "beat", "--loglevel=INFO"], env=env),
    }
    server = make_server(host, port, app, threaded=True)

    def watch() -> None:
        # If a child dies on its own, stop the whole stack rather than run half of it.
        while True:
            for name, proc in children.items():
                if proc.poll() is not None:
                    click.echo(f"{name} exited ({proc.returncode}); stopping.", err=True)
                    server.shutdown()
                    return
            if stopping.wait(1.0):
                return

    stopping = threading.Event()
    threading.Thread(target=watch, daemon=True).start()
    base = f"http://{host}:{port}/api/v1"
    click.echo(f"\n  API:   {base}\n  Docs:  {base}/docs\n  Spec:  {base}/openapi.json")
    if key:
        click.echo(
            f"  First start: an admin API key was created. Store it now; it is not shown again:\n  {key}"
        )
    click.echo("  Ctrl-C stops the API, the worker and the scheduler.\n", err=False)

    def stop(*_args: Any) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        click.echo("Stopped.")
