"""Serving: ``cms run`` (the API alone) and ``cms up`` (everything on one machine)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from cms.platform.broker import QUEUES
from cms.platform.extensions import db

LOOPBACK = "127.0.0.0/8,::1/128"


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: CMS_PORT (8000).")
@with_appcontext
def run_command(host: str, port: int | None) -> None:
    """Run the development server (use gunicorn cms.wsgi:app in production)."""
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class OneAccessLine(WSGIRequestHandler):
        """The app writes each request's access line (without the query string): not werkzeug too."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["CMS_PORT"]
    click.echo(f"API on http://{host}:{port}/api/v1  (OpenAPI: /api/v1/openapi.json)")
    run_simple(host, port, app, threaded=True, use_reloader=False, request_handler=OneAccessLine)


API_WORKERS = 2  # gunicorn processes for the embedded mode (SQLite serialises writes anyway)
API_THREADS = 4  # threads each (gthread: keep-alive connections)


def _gunicorn(host: str, port: int) -> list[str]:
    """The production server, with keep-alive (gthread), and our own access lines only."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [
        sys.executable, "-m", "gunicorn",
        "--config", "python:cms.gunicorn_conf",
        "--bind", bind,
        "--workers", str(API_WORKERS),
        "--worker-class", "gthread",
        "--threads", str(API_THREADS),
        "cms.wsgi:app",
    ]  # fmt: skip


def _wait_until_listening(host: str, port: int, children: dict[str, subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in children.values()):
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: CMS_PORT (8000).")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Worker processes.")
@with_appcontext
def up_command(host: str, port: int | None, concurrency: int) -> None:
    """Run everything on this machine: migrations, the API, a Celery worker and beat.

    Uses the settings as given; with the defaults that is the embedded mode:
    SQLite and a SQLite broker under ./var, no Redis, no PostgreSQL. The API is
    served by gunicorn (gthread workers, keep-alive), as in production. Webhooks
    may reach loopback unless CMS_WEBHOOK_ALLOWED_NETWORKS says otherwise.
    Ctrl-C stops everything; data stays in ./var for the next start.
    """
    from flask_migrate import upgrade

    from cms.cli.keys import first_admin_key

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    port = port or app.config["CMS_PORT"]
    upgrade()
    key = first_admin_key(app.config["CMS_ADMIN_KEY"])
    if key and app.config["CMS_ADMIN_KEY"]:
        key = None  # provisioned by the operator: nothing to show
    db.session.remove()
    db.engine.dispose()  # the children open their own connections

    env = dict(os.environ)
    env["CMS_DATABASE_URL"] = app.config["CMS_DATABASE_URL"]
    env["CMS_BROKER_URL"] = app.config["CMS_BROKER_URL"]
    env["CMS_PORT"] = str(port)
    env.setdefault("CMS_WEBHOOK_ALLOWED_NETWORKS", LOOPBACK)
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    children = {
        "api": subprocess.Popen(_gunicorn(host, port), env=env),
        "worker": subprocess.Popen(
            [*celery, "worker", f"--concurrency={concurrency}", "-Q", ",".join(QUEUES)],
            env=env,
        ),
        "beat": subprocess.Popen([*celery, "beat"], env=env),
    }
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        if _wait_until_listening(host, port, children):
            base = f"http://{host}:{port}/api/v1"
            click.echo(f"\n  API:   {base}\n  Docs:  {base}/docs\n  Spec:  {base}/openapi.json")
            if key:
                click.echo(
                    "  First start: an admin API key was created. Store it now; it is not shown again:"
                    f"\n  {key}"
                )
            click.echo("  Ctrl-C stops the API, the worker and the scheduler.\n")
        # If a child dies on its own, stop the whole stack rather than run half of it.
        while not stopping.wait(0.5):
            exited = [name for name, proc in children.items() if proc.poll() is not None]
            if exited:
                click.echo(f"{exited[0]} exited ({children[exited[0]].returncode}); stopping.", err=True)
                break
    except KeyboardInterrupt:
        pass
    finally:
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        click.echo("Stopped.")
