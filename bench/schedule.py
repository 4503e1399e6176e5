"""Scheduling precision (issue 13): how close to its time a scheduled publish fires.

One run, on this machine (see bench/README.md):

* a throwaway PostgreSQL database (``cms db upgrade``, dropped at the end), an admin
  key, a private key prefix on Redis, and the stack of bench/fanout.py: the API under
  gunicorn, one Celery worker (``--concurrency 2``), beat with the default
  ``CMS_SCHEDULE_INTERVAL`` (1 s), and the loopback sink with one subscription;
* ours: ``--count`` articles (40), each scheduled with ``POST /articles/{id}/schedule``
  at a time ``--spacing`` s (0.73) after the previous one, the first ``--lead`` s (4)
  ahead, so the times fall at every phase of beat's tick. Once all have fired, per
  action: ``fired_at - run_at`` from ``scheduled_actions``, and ``run_at`` -> first
  arrival of its event's webhook at the sink (what the partner sees);
* the baseline, the naive design: a Celery task per publish sent with
  ``eta=publish_at`` (``bench/eta_worker.py``, same broker, same worker settings,
  concurrency 2) at the same offsets, whose body notes ``time.time()``;
* p50, p90, p99 and max of each, how many within 2 s (the issue's target), and ours
  against the baseline. Waits poll with deadlines; nothing is asserted.

Usage: ``python bench/schedule.py [--count 40] [--spacing 0.73] [--no-save]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from celery import Celery
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from authoring import ADMIN_DSN, BIN, ROOT, admin_execute, cms, database_url  # noqa: E402
from fanout import REDIS_URL, RESULTS_DIR, Api, Sink, percentile, spawn, start_stack, stop  # noqa: E402

TARGET_SECONDS = 2.0  # issue 13: "a scheduled publish fires within 2 s of its time"
SLACK_SECONDS = 30.0  # how long after the last time to wait for stragglers
BODY = "<p>" + " ".join(["The council will vote on the harbour plan at noon."] * 30) + "</p>"
ETA_WARNING = (
    "The ETA baseline is a design we must not rely on: the pending publish lives only in Redis and "
    "in the worker's memory. A Redis flush (or a restart without persistence) loses it; a worker that "
    "dies holding it reserved gives it back only after the broker's visibility timeout (an hour), and "
    "an ETA further ahead than that is delivered twice. Ours is a row in scheduled_actions, committed "
    "with the request: beat and the worker only ask the database what is due, so any worker runs it, "
    "once, after any outage."
)


def wait_until(check: Callable[[], bool], deadline: float, every: float = 0.2) -> bool:
    """Poll ``check`` until it holds (True) or the deadline passes (False)."""
    while not check():
        if time.time() >= deadline:
            return False
        time.sleep(every)
    return True


def planned_times(count: int, lead: float, spacing: float) -> list[float]:
    first = time.time() + lead
    return [first + i * spacing for i in range(count)]


def distribution(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"n": 0, "samples_ms": []}
    ms = [s * 1000 for s in seconds]
    return {
        "samples_ms": [round(m, 1) for m in ms],
        "n": len(ms),
        **{f"p{q}_ms": round(percentile(ms, q), 1) for q in (50, 90, 99)},
        "max_ms": round(max(ms), 1),
        "min_ms": round(min(ms), 1),
        "within_target": sum(s <= TARGET_SECONDS for s in seconds),
    }


# --------------------------------------------------------------------------- ours


def schedule_articles(api: Api, count: int, lead: float, spacing: float) -> tuple[list[str], list[float]]:
    """Create ``count`` drafts, then schedule their publishes: (article ids, planned epoch times)."""
    ids: list[str] = []
    for _ in range(count):
        draft = {"headline": f"Scheduled {secrets.token_hex(6)}", "body": BODY}
        ids.append(api.call("POST", "/articles", draft, expect=201)["id"])
    planned = planned_times(count, lead, spacing)
    for article_id, when in zip(ids, planned, strict=True):
        publish_at = datetime.fromtimestamp(when, UTC).isoformat()
        api.call("POST", f"/articles/{article_id}/schedule", {"publish_at": publish_at})
    if time.time() >= planned[0]:
        print(f"  warning: scheduling ended after the first time; raise --lead ({lead} s)", flush=True)
    return ids, planned


def fired_rows(pg_url: str, ids: list[str]) -> list[tuple[str, str, float, float | None, str | None]]:
    """(article id, status, run_at, fired_at, event id) of the articles' scheduled publishes."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute(
            """SELECT article_id::text, status, extract(epoch FROM run_at)::float8,
                      extract(epoch FROM fired_at)::float8, event_id::text
               FROM scheduled_actions WHERE action = 'publish' AND article_id = ANY(%s::uuid[])""",
            (ids,),
        ).fetchall()


def run_ours(api: Api, sink: Sink, pg_url: str, count: int, lead: float, spacing: float) -> dict[str, Any]:
    ids, planned = schedule_articles(api, count, lead, spacing)
    deadline = planned[-1] + SLACK_SECONDS
    wait_until(lambda: all(row[1] != "pending" for row in fired_rows(pg_url, ids)), deadline)
    rows = fired_rows(pg_url, ids)
    events = [row[4] for row in rows if row[4]]
    wait_until(lambda: set(events) <= set(sink.stats(since=planned[0] - 60)["ids"]), deadline)
    arrivals = sink.stats(since=planned[0] - 60)["ids"]
    fired = [fired_at - run_at for _a, _s, run_at, fired_at, _e in rows if fired_at is not None]
    partner = [arrivals[e][0] - run_at for _a, _s, run_at, _f, e in rows if e in arrivals]
    return {
        "scheduled": count,
        "statuses": dict(Counter(row[1] for row in rows)),
        "fired": distribution(fired),
        "partner": distribution(partner),
        "missing_webhooks": len(rows) - len(partner),
        "fired_at": sorted(round(row[3], 3) for row in rows if row[3] is not None),  # beat's cadence
    }


# --------------------------------------------------------------------------- the ETA baseline


def run_eta(env: dict[str, str], logs: Path, count: int, lead: float, spacing: float) -> dict[str, Any]:
    prefix = f"bench-eta-{secrets.token_hex(3)}:"
    worker = spawn(
        "eta-worker",
        [str(BIN / "celery"), "-A", "eta_worker", "worker", "--concurrency=2", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"eta-{prefix}@%h"],
        {**env, "ETA_BROKER_URL": REDIS_URL, "ETA_PREFIX": prefix, "PYTHONPATH": str(BENCH_DIR)},
        logs,
        cwd=BENCH_DIR,
    )  # fmt: skip
    store = redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}fired"
    try:
        client = Celery("eta", broker=REDIS_URL, set_as_current=False)
        client.conf.broker_transport_options = {"global_keyprefix": prefix}

        def send(tag: str, when: float) -> None:
            client.send_task("eta.fire", args=[tag], eta=datetime.fromtimestamp(when, UTC))

        send("warm-up", time.time() + 0.5)  # proves the worker is up, and warms it
        if not wait_until(lambda: store.hexists(key, "warm-up"), time.time() + 60):
            raise RuntimeError(f"the ETA worker did not start; see {logs / 'eta-worker.log'}")
        planned = planned_times(count, lead, spacing)
        for i, when in enumerate(planned):
            send(str(i), when)
        wait_until(lambda: store.hlen(key) > count, planned[-1] + SLACK_SECONDS)
        ran = {k.decode(): float(v) for k, v in store.hgetall(key).items()}
        late = [ran[str(i)] - when for i, when in enumerate(planned) if str(i) in ran]
        return {"scheduled": count, "fired": distribution(late)}
    finally:
        stop(worker)
        keys = list(store.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            store.delete(*keys)


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cms_schedule_{secrets.token_hex(4)}"
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    pg_url = database_url(args.pg_dsn, name)
    logs = Path(tempfile.mkdtemp(prefix="cms-schedule-"))
    prefix = f"bench-{secrets.token_hex(3)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update(
        {
            "CMS_DATABASE_URL": pg_url.replace("postgresql://", "postgresql+psycopg://", 1),
            "CMS_BROKER_URL": REDIS_URL,
            "CMS_BROKER_PREFIX": prefix,
            "CMS_SECRET_KEY": "bench",
            "CMS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "CMS_VAR_DIR": str(logs / "var"),
            **dict(item.split("=", 1) for item in args.setting),
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    print(f"database {name}; logs in {logs}", flush=True)
    try:
        cms(env, "db", "upgrade")
        key = cms(env, "create-api-key", "--role", "admin", "--name", "bench").strip().splitlines()[-1]
        roles, sink_port, api_port = start_stack(env, logs, f"bench-{prefix}")
        procs.extend(roles.values())
        api, sink = Api(api_port, key), Sink(sink_port)
        api.call("POST", "/subscriptions", {"url": sink.url("/s/0")}, expect=201)
        results: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "count": args.count,
            "spacing_s": args.spacing,
            "lead_s": args.lead,
            "schedule_interval_s": float(env.get("CMS_SCHEDULE_INTERVAL", "1.0")),
        }
        warm = run_ours(api, sink, pg_url, 2, 2.0, 0.5)  # not counted: the stack is up and warm
        if warm["fired"]["n"] < 2:
            raise RuntimeError(f"the warm-up publishes did not fire: {warm}; see {logs}")
        print(f"  ours: scheduling {args.count} publishes over {args.count * args.spacing:.0f} s", flush=True)
        results["ours"] = run_ours(api, sink, pg_url, args.count, args.lead, args.spacing)
        print(f"  ETA baseline: {args.count} Celery tasks with eta= at the same offsets", flush=True)
        results["eta"] = run_eta(env, logs, args.count, args.lead, args.spacing)
        results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        results["load_avg_1m"] = round(os.getloadavg()[0], 2)
        return results
    finally:
        for proc in reversed(procs):
            stop(proc)
        admin_execute(
            args.pg_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        store = redis.Redis.from_url(REDIS_URL)
        keys = list(store.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            store.delete(*keys)


def report(results: dict[str, Any]) -> None:
    ours, partner, eta = results["ours"]["fired"], results["ours"]["partner"], results["eta"]["fired"]
    count = results["count"]
    print()
    print(
        f"Scheduling precision, {results['started']}, {results['machine']['cpus']} CPUs: {count} publish "
        f"times {results['spacing_s']} s apart, beat every {results['schedule_interval_s']:g} s"
    )
    print(
        f"{'lateness after the scheduled time (ms)':<46}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  within 2 s"
    )
    print("-" * 92)
    for label, d in (
        ("ours: run_at -> fired_at (database)", ours),
        ("ours: run_at -> first webhook at the partner", partner),
        ("baseline: Celery eta= -> task body runs", eta),
    ):
        if not d["n"]:
            print(f"{label:<46}{'(none fired)':>32}  0/{count}")
            continue
        cells = "".join(f"{d[k]:>8.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
        print(f"{label:<46}{cells}  {d['within_target']}/{count}")
    ratios = {}
    for q in ("p50_ms", "p99_ms"):
        if ours.get(q) is not None and eta.get(q):
            ratios[q] = round(ours[q] / eta[q], 1)
    results["ratios_ours_vs_eta"] = ratios
    print(
        f"{'ours (fired_at) / ETA baseline, p50 and p99':<46}"
        + "".join(f"{r:>7.1f}x" for r in ratios.values())
    )
    ok = ours["n"] == count and ours["within_target"] == count and partner.get("within_target") == count
    print(
        f"target, every scheduled publish fires (and reaches the partner) within {TARGET_SECONDS:g} s: "
        f"{'met' if ok else 'NOT met'}; statuses {results['ours']['statuses']}"
    )
    print(ETA_WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=40, help="scheduled publishes (and ETA tasks)")
    parser.add_argument("--spacing", type=float, default=0.73, help="seconds between scheduled times")
    parser.add_argument("--lead", type=float, default=4.0, help="seconds from scheduling to the first time")
    parser.add_argument("--pg-dsn", default=ADMIN_DSN)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="CMS_X=VALUE", help="e.g. CMS_SCHEDULE_INTERVAL=0.5"
    )
    args = parser.parse_args(argv)
    results = run(args)
    report(results)
    print(json.dumps(results))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"schedule-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
