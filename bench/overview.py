"""Ops overview benchmark (issue 15): the console's overview over 1,000,000 deliveries.

One run, on a throwaway PostgreSQL database (dropped at the end):

* ``--events`` article events spread over the last hour (inserted in bulk: the outbox
  trigger counts them), fanned out to ``--subscriptions`` subscriptions: events x
  subscriptions delivery rows (default 10,000 x 100 = 1,000,000), all in flight;
* every delivery's outcome written by the production writer (``cms.webhooks.outcomes.record``,
  batches of 1,000 in time order, a few seconds after its event; two subscriptions fail
  with 500 and retry): attempt rows, delivery states, health columns and the per-minute
  tallies, exactly as workers write them;
* the tallies then spread over all 16 shards (what 16 or more worker connections leave:
  the most rows a minute can have);
* **the overview as the console computes it** (``cms.webhooks.overview.overview``), in
  process, ``--runs`` times: p50 / p95 / max;
* **the page** ``GET /console/ops`` from a gunicorn CMS, signed in as an admin, ``--runs``
  times, one request at a time: p50 / p95 / max (target: p95 < 300 ms);
* the baseline, in the same run: the same figures computed from the raw rows
  (``naive`` below: events, attempts by outcome and first-delivery percentiles per minute
  of the last hour, with ``GROUP BY`` and ``percentile_cont`` over deliveries, attempts
  and events), ``--naive-runs`` times.

Usage: ``python bench/overview.py [--events 10000] [--subscriptions 100] [--runs 100]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests
from authoring import (  # the shared bench plumbing (same directory)
    Gunicorn,
    admin_execute,
    background_load,
    cms,
    common_options,
    database_url,
    git_revision,
    save_result,
)
from psycopg import sql

TARGET_P95_MS = 300.0
FAILING = 2  # subscriptions whose receiver answers 500

SETUP_SQL = """
INSERT INTO subscriptions (id, url, event_types, sections, tags, languages, format, headers, enabled,
                           max_in_flight, embargo, secret, created_at, updated_at, consecutive_failures)
    SELECT gen_random_uuid(), 'https://partner-' || n || '.example/hooks', '["*"]', '[]', '[]', '[]',
           'json', '{}', true, 1000, 'hold', 'whsec_' || md5(n::text), now(), now(), 0
    FROM generate_series(1, %(subscriptions)s) AS n;
INSERT INTO outbox_events (id, type, occurred_at, actor, data, relayed_at)
    SELECT gen_random_uuid(), 'article.published',
           %(start)s + (n * %(span)s / %(events)s) * interval '1 second', 'bench', '{}', now()
    FROM generate_series(0, %(events)s - 1) AS n;
INSERT INTO deliveries (id, event_id, subscription_id, event_type, format, status, attempts, retry_index,
                        lease_expires_at, created_at, updated_at)
    SELECT gen_random_uuid(), e.id, s.id, e.type, 'json', 'in_flight', 0, 0, now() + interval '1 day',
           e.occurred_at, e.occurred_at
    FROM outbox_events AS e CROSS JOIN subscriptions AS s;
"""

# What the overview shows, computed from the raw rows (the baseline).
NAIVE_SQL = """
WITH minutes AS (
    SELECT generate_series(date_trunc('minute', %(now)s::timestamptz) - interval '59 minutes',
                           date_trunc('minute', %(now)s::timestamptz), interval '1 minute') AS minute
), events AS (
    SELECT date_trunc('minute', occurred_at) AS minute, count(*) AS n FROM outbox_events
    WHERE occurred_at >= (SELECT min(minute) FROM minutes) GROUP BY 1
), attempts AS (
    SELECT date_trunc('minute', attempted_at) AS minute, outcome, count(*) AS n FROM delivery_attempts
    WHERE attempted_at >= (SELECT min(minute) FROM minutes) GROUP BY 1, 2
), latency AS (
    SELECT date_trunc('minute', d.delivered_at) AS minute,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY d.delivered_at - e.occurred_at) AS p50,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY d.delivered_at - e.occurred_at) AS p99
    FROM deliveries AS d JOIN outbox_events AS e ON e.id = d.event_id
    WHERE d.delivered_at >= (SELECT min(minute) FROM minutes) GROUP BY 1
)
SELECT m.minute, ev.n, (SELECT json_object_agg(outcome, n) FROM attempts a WHERE a.minute = m.minute),
       l.p50, l.p99
FROM minutes m LEFT JOIN events ev USING (minute) LEFT JOIN latency l USING (minute) ORDER BY 1
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "runs": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(pct(ms, 0.95), 2),
        "max_ms": round(max(ms), 2),
    }


def write_outcomes(url: str, env: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """Every in-flight delivery's outcome through the production writer, in time order."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("CMS_")})
    from cms.app import create_app  # after the environment is set
    from cms.platform.extensions import db
    from cms.webhooks import outcomes
    from cms.webhooks.policy import DeliveryPolicy
    from cms.webhooks.transport.schedule import RetryPolicy
    from cms.webhooks.transport.sender import Job, Result

    app = create_app()
    policy = DeliveryPolicy(retry=RetryPolicy(), lease_seconds=60, rng=rng)
    with psycopg.connect(url) as conn:
        failing = {
            r[0] for r in conn.execute("SELECT id FROM subscriptions ORDER BY id LIMIT %s", (FAILING,))
        }
        rows = conn.execute(
            "SELECT d.id, d.event_id, d.subscription_id, e.occurred_at FROM deliveries d"
            " JOIN outbox_events e ON e.id = d.event_id ORDER BY e.occurred_at, d.id"
        ).fetchall()
    t0, batches = time.perf_counter(), 0
    with app.app_context():
        for i in range(0, len(rows), 1000):
            chunk = rows[i : i + 1000]
            results = []
            for delivery_id, event_id, subscription_id, occurred_at in chunk:
                job = Job(delivery_id, event_id, subscription_id, "", b"", (), (), 1, 0)
                started = occurred_at + timedelta(seconds=rng.lognormvariate(-1.5, 0.8))
                status = 500 if subscription_id in failing else 200
                results.append(Result(job, started, rng.uniform(5, 80), status_code=status, excerpt=""))
            now = max(r.started_at for r in results) + timedelta(milliseconds=100)
            outcomes.record(db.session, results, now, policy)
            db.session.commit()
            batches += 1
            if batches % 100 == 0:
                print(f"  outcomes: {i + len(chunk):,} of {len(rows):,}", flush=True)
    return {
        "deliveries": len(rows),
        "batches": batches,
        "outcome_write_s": round(time.perf_counter() - t0, 1),
    }


def spread_tallies(url: str) -> int:
    """Every tally row split over the 16 shards (as 16+ writer connections leave them)."""
    with psycopg.connect(url) as conn:
        conn.execute("""
            CREATE TEMP TABLE t AS
                SELECT minute, metric, sum(n)::bigint AS n FROM minute_tallies GROUP BY 1, 2;
            DELETE FROM minute_tallies;
            INSERT INTO minute_tallies (minute, metric, shard, n)
                SELECT minute, metric, s, n / 16 + CASE WHEN s < n % 16 THEN 1 ELSE 0 END
                FROM t CROSS JOIN generate_series(0, 15) AS s;
        """)
        count = conn.execute("SELECT count(*) FROM minute_tallies").fetchone()[0]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return int(count)


def time_in_process(env: dict[str, str], now: datetime, runs: int) -> tuple[dict[str, float], Any]:
    from cms.app import create_app
    from cms.platform.extensions import db
    from cms.webhooks import overview

    app = create_app()
    ms, view = [], None
    with app.app_context():
        for _ in range(runs):
            t = time.perf_counter()
            view = overview.overview(db.session, now)
            db.session.rollback()
            ms.append((time.perf_counter() - t) * 1000)
    return summary(ms), view


def time_naive(url: str, now: datetime, runs: int) -> tuple[dict[str, float], list[Any]]:
    ms, rows = [], []
    with psycopg.connect(url) as conn:
        for _ in range(runs):
            t = time.perf_counter()
            rows = conn.execute(NAIVE_SQL, {"now": now}).fetchall()
            ms.append((time.perf_counter() - t) * 1000)
    return summary(ms), rows


def time_page(port: int, key: str, runs: int) -> tuple[dict[str, float], str]:
    base = f"http://127.0.0.1:{port}/console"
    with requests.Session() as s:
        login = s.get(f"{base}/login", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
        assert s.post(f"{base}/login", data={"key": key, "csrf_token": token}, timeout=30).ok
        page = s.get(f"{base}/ops", timeout=30)
        assert page.status_code == 200 and "Delivery overview" in page.text, page.status_code
        ms = []
        for _ in range(runs):
            t = time.perf_counter()
            r = s.get(f"{base}/ops", timeout=30)
            ms.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
    return summary(ms), page.text


def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cms_bench_overview_{secrets.token_hex(4)}"
    url = database_url(args.pg_dsn, name)
    log_dir = Path(tempfile.mkdtemp(prefix="cms-bench-overview-"))
    env = {
        **os.environ,
        "CMS_DATABASE_URL": url,
        "CMS_SECRET_KEY": secrets.token_urlsafe(32),
        "CMS_ACCESS_LOG": "0",
        "CMS_LOG_LEVEL": "WARNING",
        "CMS_BROKER_URL": "",
    }
    out: dict[str, Any] = {
        "revision": git_revision(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "busy_cores_before": background_load(10.0),
        **{k: getattr(args, k) for k in ("events", "subscriptions", "runs", "naive_runs")},
    }
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    server = None
    try:
        cms(env, "db", "upgrade")
        key = cms(env, "create-api-key", "--role", "admin").strip().splitlines()[-1]
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        with psycopg.connect(url) as conn:
            params = {"subscriptions": args.subscriptions, "events": args.events, "span": 3540.0}
            params["start"] = now - timedelta(seconds=3550)
            for statement in SETUP_SQL.split(";"):
                if statement.strip():
                    conn.execute(statement, params)
        out["insert_s"] = round(time.perf_counter() - t0, 1)
        print(
            f"  {args.events * args.subscriptions:,} deliveries inserted in {out['insert_s']} s", flush=True
        )
        out.update(write_outcomes(url, env, random.Random(5)))
        out["tally_rows"] = spread_tallies(url)
        with psycopg.connect(url) as conn:
            out["rows"] = {
                t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in ("deliveries", "delivery_attempts", "outbox_events", "minute_tallies")
            }
        now = datetime.now(UTC)
        out["in_process"], view = time_in_process(env, now, args.runs)
        out["naive"], naive_rows = time_naive(url, now, args.naive_runs)
        out["agrees"] = {
            "events": [view.total_events, sum(r[1] or 0 for r in naive_rows)],
            "attempts": [
                sum(sum(v) for v in view.attempts.values()),
                sum(sum((r[2] or {}).values()) for r in naive_rows),
            ],
        }
        server = Gunicorn("cms.wsgi:app", args, env, log_dir)
        server.wait_ready("/healthz")
        out["page"], page = time_page(server.port, key, args.runs)
        out["page_bytes"] = len(page)
        out["failing_listed"] = page.count('<tr class="failing">')
        out["ratio_in_process_to_naive"] = round(out["in_process"]["p50_ms"] / out["naive"]["p50_ms"], 5)
        out["target_met"] = out["page"]["p95_ms"] < TARGET_P95_MS
    finally:
        if server is not None:
            server.stop()
        if not args.keep_db:
            admin_execute(
                args.pg_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return out


def print_table(r: dict[str, Any]) -> None:
    rows = r["rows"]
    print(
        f"\noverview over {rows['deliveries']:,} deliveries, {rows['delivery_attempts']:,} attempts,"
        f" {rows['outbox_events']:,} events in the last hour; {rows['minute_tallies']:,} tally rows"
        f" (16 shards); {r['started']}, {r['revision']}, {r['cpus']} CPUs,"
        f" {r['busy_cores_before']} cores busy before"
    )
    print(f"  outcomes written by the production writer in {r['outcome_write_s']} s ({r['batches']} batches)")
    for label, key in (
        ("overview() in process (aggregates)", "in_process"),
        ("GET /console/ops (gunicorn, signed in)", "page"),
        ("baseline: the same from raw rows", "naive"),
    ):
        s = r[key]
        print(f"  {label:42} p50 {s['p50_ms']:9.2f} ms  p95 {s['p95_ms']:9.2f} ms  max {s['max_ms']:9.2f} ms"
              f"  ({s['runs']} runs)")  # fmt: skip
    verdict = "met" if r["target_met"] else "NOT MET"
    print(
        f"  page p95 {r['page']['p95_ms']} ms, target < {TARGET_P95_MS:g} ms: {verdict};"
        f" aggregates / raw rows (p50): {r['ratio_in_process_to_naive']}"
    )
    print(
        f"  the two agree (overview, raw): {r['agrees']}; failing subscriptions listed: {r['failing_listed']}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--subscriptions", type=int, default=100)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--naive-runs", type=int, default=5)
    common_options(p, workers=2)
    args = p.parse_args(argv)
    args.preload = False
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print_table(result)
    print(json.dumps(result, separators=(",", ":"), default=str))
    if not args.no_save:
        save_result("overview", result)
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
