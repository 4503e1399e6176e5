"""Serving: ``cms run`` (the API alone) and ``cms up`` (everything on one machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import click
from flask import Flask, current_app
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


def _gunicorn(listener: socket.socket) -> list[str]:
    """The production server, with keep-alive (gthread), and our own access lines only.
    It serves on ``listener``, bound here (so ``--port 0`` works and no other process
    can take the port between choosing and binding it)."""
    return [
        sys.executable, "-m", "gunicorn",
        "--config", "python:cms.gunicorn_conf",
        "--bind", f"fd://{listener.fileno()}",
        "--workers", str(API_WORKERS),
        "--worker-class", "gthread",
        "--threads", str(API_THREADS),
        "cms.wsgi:app",
    ]  # fmt: skip


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _wait_until_serving(host: str, port: int, children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """Until the API answers (the socket accepts before gunicorn's workers are up)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in children.values()):
            return False
        try:
            with socket.create_connection((host, port), timeout=1) as conn:
                conn.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                if conn.recv(12).startswith(b"HTTP/1."):
                    return True
        except OSError:
            pass
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
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = _prepare(app)
    listener = _listener(host, app.config["CMS_PORT"] if port is None else port)
    port = listener.getsockname()[1]
    children = _start(app, listener, port, concurrency)
    listener.close()  # gunicorn holds it now
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        if _wait_until_serving(host, port, children):
            _banner(host, port, key)
        _watch(children, stopping)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(children)
        click.echo("Stopped.")


def _prepare(app: Flask) -> str | None:
    """Migrations and the first admin key (returned when it was created here, to show once)."""
    from flask_migrate import upgrade

    from cms.cli.keys import first_admin_key

    upgrade()
    key = first_admin_key(app.config["CMS_ADMIN_KEY"])
    if key and app.config["CMS_ADMIN_KEY"]:
        key = None  # provisioned by the operator: nothing to show
    db.session.remove()
    db.engine.dispose()  # the children open their own connections
    return key


def _start(
    app: Flask, listener: socket.socket, port: int, concurrency: int
) -> dict[str, subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env["CMS_DATABASE_URL"] = app.config["CMS_DATABASE_URL"]
    env["CMS_BROKER_URL"] = app.config["CMS_BROKER_URL"]
    env["CMS_PORT"] = str(port)
    env.setdefault("CMS_WEBHOOK_ALLOWED_NETWORKS", LOOPBACK)
    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    return {
        # gunicorn in a process group of its own: stopping kills whatever of it is left
        # (a worker that hangs on its way out would otherwise outlive its master).
        "api": subprocess.Popen(
            _gunicorn(listener), env=env, pass_fds=(listener.fileno(),), start_new_session=True
        ),
        "worker": subprocess.Popen(
            [*celery, "worker", f"--concurrency={concurrency}", "-Q", ",".join(QUEUES)],
            env=env,
        ),
        "beat": subprocess.Popen([*celery, "beat"], env=env),
    }


def _banner(host: str, port: int, key: str | None) -> None:
    base = f"http://{host}:{port}/api/v1"
    click.echo(f"\n  API:   {base}\n  Docs:  {base}/docs\n  Spec:  {base}/openapi.json")
    if key:
        click.echo(
            f"  First start: an admin API key was created. Store it now; it is not shown again:\n  {key}"
        )
    click.echo("  Ctrl-C stops the API, the worker and the scheduler.\n")


def _watch(children: dict[str, subprocess.Popen[bytes]], stopping: threading.Event) -> None:
    """If a child dies on its own, stop the whole stack rather than run half of it."""
    while not stopping.wait(0.5):
        exited = [name for name, proc in children.items() if proc.poll() is not None]
        if exited:
            click.echo(f"{exited[0]} exited ({children[exited[0]].returncode}); stopping.", err=True)
            return


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each (graceful), then whatever is left of the API's process group."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in children.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(children["api"].pid, 0)  # raises when nothing of the group is left
        click.echo("an API worker outlived its master; killed it.", err=True)
        os.killpg(children["api"].pid, signal.SIGKILL)
