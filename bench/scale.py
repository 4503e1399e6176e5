"""Big tables against small ones: does anything slow down as the history grows?

One run, on this machine (see bench/README.md), twice over, on two throwaway
PostgreSQL databases that differ only in their history:

* ``small``: a short history of the same shape (10,000 deliveries), so that every
  list returns the same full pages on both;
* ``big``: 90 days of a busy newsroom loaded with SQL
  (``generate_series``): 100,000 articles, 400,000 events, 4,000,000 deliveries
  to 10 since-deleted partner subscriptions and 4,700,000 attempts (``--deliveries``
  scales it).

Against each, as docker compose runs them (API under gunicorn, one Celery worker,
beat, the loopback sink of bench/fanout.py):

* fan-out at N = 1,000 subscriptions (deliveries/s, median of ``--rounds``);
* publish -> first delivery, p50 and p99 (N = 10);
* the delivery log: ``GET /deliveries`` unfiltered, ``?status=failed``,
  ``?subscription_id=`` (an old partner's), and the ops counts
  (``cms deliveries status``, ``GET /metrics``), median of 20 calls each.

Targets: big/small at most 1.5 for every read, fan-out at least 0.8 of the small
database's rate. Usage: ``python bench/scale.py [--deliveries 4000000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from authoring import ADMIN_DSN, HOST, admin_execute, cms, database_url  # noqa: E402
from fanout import (  # noqa: E402
    REDIS_URL,
    RESULTS_DIR,
    Api,
    Sink,
    fan_out_rates,
    first_delivery_latency,
    set_subscriptions,
    start_stack,
    stop,
)

TARGET_READ_RATIO = 1.5
SMALL_HISTORY = 10_000  # deliveries in the small database
TARGET_FANOUT_RATIO = 0.8

# The history, in SQL: articles with one version each, four events per article,
# deliveries of every event to 10 partners that have since left, an attempt each
# (a retry before success for one in six), spread over 90 days.
HISTORY = [
    """INSERT INTO subscriptions (id, url, event_types, sections, tags, languages, format, headers,
           enabled, max_in_flight, secret, created_at, updated_at, deleted_at, consecutive_failures)
       SELECT gen_random_uuid(), 'https://partner' || i || '.example/hook', '["*"]', '[]', '[]', '[]',
           'json', '{{}}', true, 4, 'whsec_' || md5(i::text), now() - interval '91 days',
           now() - interval '1 day', now() - interval '1 day', 0
       FROM generate_series(1, 10) AS i""",
    """INSERT INTO articles (id, slug, state, headline, section, section_key, language, current_version,
           published_version, event_sequence, created_at, updated_at, first_published_at, published_at)
       SELECT gen_random_uuid(), 'history-' || i, 'published', 'Story ' || i, 'News', 'news', 'en', 1, 1, 4,
           now() - (i % 90) * interval '1 day', now() - (i % 90) * interval '1 day',
           now() - (i % 90) * interval '1 day', now() - (i % 90) * interval '1 day'
       FROM generate_series(1, {articles}) AS i""",
    """INSERT INTO article_versions (article_id, number, data, created_at, created_by, content_hash)
       SELECT id, 1, jsonb_build_object('headline', headline, 'body', '<p>History.</p>'), created_at,
           'history', md5(id::text)
       FROM articles WHERE slug LIKE 'history-%'""",
    """INSERT INTO outbox_events (id, type, article_id, version, sequence, occurred_at, actor, data,
           relayed_at)
       SELECT gen_random_uuid(), CASE s WHEN 1 THEN 'article.published' ELSE 'article.updated' END,
           a.id, 1, s, a.created_at + s * interval '1 hour', 'history', '{{}}',
           a.created_at + s * interval '1 hour'
       FROM articles a CROSS JOIN generate_series(1, 4) AS s WHERE a.slug LIKE 'history-%'""",
    """INSERT INTO deliveries (id, event_id, subscription_id, article_id, sequence, event_type, format,
           status, attempts, retry_index, created_at, updated_at, last_attempt_at, delivered_at,
           last_status_code)
       SELECT gen_random_uuid(), e.id, s.id, e.article_id, e.sequence, e.type, 'json',
           CASE WHEN random() < 0.01 THEN 'failed' WHEN random() < 0.005 THEN 'cancelled'
                ELSE 'succeeded' END,
           1, 0, e.occurred_at, e.occurred_at, e.occurred_at, e.occurred_at, 200
       FROM (SELECT * FROM outbox_events WHERE actor = 'history' LIMIT {events}) e
       CROSS JOIN (SELECT id FROM subscriptions WHERE deleted_at IS NOT NULL) s""",
    """INSERT INTO delivery_attempts (delivery_id, number, attempted_at, duration_ms, status_code,
           response_excerpt, outcome)
       SELECT id, 1, created_at, 12.5, 200, 'ok', 'succeeded' FROM deliveries""",
    """INSERT INTO delivery_attempts (delivery_id, number, attempted_at, duration_ms, status_code,
           response_excerpt, outcome)
       SELECT id, 2, created_at + interval '5 seconds', 15.0, 200, 'ok', 'succeeded'
       FROM deliveries WHERE random() < 0.175""",
]


def load_history(url: str, deliveries: int) -> dict[str, Any]:
    """Load the history with the counting triggers off, then count once (as 0008 does)."""
    events = max(1, deliveries // 10)
    articles = max(1, events // 4)
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE deliveries DISABLE TRIGGER USER")
        for statement in HISTORY:
            conn.execute(statement.format(articles=articles, events=events))
        conn.execute("ALTER TABLE deliveries ENABLE TRIGGER USER")
        conn.execute("DELETE FROM delivery_counts")
        conn.execute(
            "INSERT INTO delivery_counts (status, shard, n) SELECT status, 0, count(*) FROM deliveries"
            " GROUP BY status"
        )
        conn.execute("VACUUM ANALYZE")
        sizes = dict(
            conn.execute(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname IN"
                " ('articles', 'outbox_events', 'deliveries', 'delivery_attempts')"
            ).fetchall()
        )
        old_partner = conn.execute("SELECT id::text FROM subscriptions WHERE deleted_at IS NOT NULL LIMIT 1")
        partner = (old_partner.fetchone() or [None])[0]
    return {"seconds": round(time.monotonic() - started, 1), "rows": sizes, "old_partner": partner}


def timed_reads(
    api: Api, env: dict[str, str], port: int, partner: str | None, calls: int
) -> dict[str, float]:
    """Median ms of each delivery-log read and ops count."""
    reads = {
        "GET /deliveries": "/deliveries?limit=50",
        "GET /deliveries?status=failed": "/deliveries?limit=50&status=failed",
        "GET /deliveries?subscription_id=": f"/deliveries?limit=50&subscription_id={partner}"
        if partner
        else None,
        "GET /events": "/events?limit=50",
    }
    out: dict[str, float] = {}
    for name, path in reads.items():
        if path is None:
            continue
        api.call("GET", path)  # warm
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter()
            api.call("GET", path)
            samples.append((time.perf_counter() - t0) * 1000)
        out[name] = round(statistics.median(samples), 2)
    import http.client

    metrics = http.client.HTTPConnection(HOST, port, timeout=60)
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        metrics.request("GET", "/metrics")
        metrics.getresponse().read()
        samples.append((time.perf_counter() - t0) * 1000)
    out["GET /metrics"] = round(statistics.median(samples), 2)
    # `cms deliveries status`, in process (an interpreter's start-up would hide the query).
    code = (
        "import time,statistics,sys\n"
        "from cms import create_app\n"
        "app=create_app(); runner=app.test_cli_runner(); s=[]\n"
        f"for _ in range({calls}):\n"
        "    t=time.perf_counter(); r=runner.invoke(args=['deliveries','status','--json'])\n"
        "    s.append(time.perf_counter()-t)\n"
        "    assert r.exit_code==0, r.output\n"
        "print(statistics.median(s)*1000)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    out["cms deliveries status"] = round(float(result.stdout.strip().splitlines()[-1]), 2)
    return out


def measure(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    name = f"cms_scale_{kind}_{secrets.token_hex(3)}"
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    plain_url = database_url(args.pg_dsn, name)
    db_url = plain_url.replace("postgresql://", "postgresql+psycopg://", 1)
    logs = Path(tempfile.mkdtemp(prefix=f"cms-scale-{kind}-"))
    prefix = f"scale-{secrets.token_hex(3)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update(
        {
            "CMS_DATABASE_URL": db_url,
            "CMS_BROKER_URL": REDIS_URL,
            "CMS_BROKER_PREFIX": prefix,
            "CMS_SECRET_KEY": "bench",
            "CMS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "CMS_VAR_DIR": str(logs / "var"),
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    print(f"[{kind}] database {name}; logs in {logs}", flush=True)
    try:
        cms(env, "db", "upgrade")
        loaded = load_history(plain_url, args.deliveries if kind == "big" else SMALL_HISTORY)
        print(f"[{kind}] history loaded in {loaded['seconds']} s: {loaded['rows']}", flush=True)
        key = cms(env, "create-api-key", "--role", "admin", "--name", "bench").strip().splitlines()[-1]
        roles, sink_port, api_port = start_stack(env, logs, f"scale-{prefix}")
        procs.extend(roles.values())
        api, sink = Api(api_port, key), Sink(sink_port)
        set_subscriptions(api, sink, 1000)
        fan_out = fan_out_rates(api, sink, 1000, args.rounds, procs=roles)
        print(f"[{kind}] fan-out N=1000: {fan_out['rate_median']} deliveries/s", flush=True)
        set_subscriptions(api, sink, 10)
        latency = first_delivery_latency(api, sink, args.latency, 10)
        print(
            f"[{kind}] publish -> first delivery: p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms",
            flush=True,
        )
        reads = timed_reads(api, env, api_port, loaded["old_partner"], args.calls)
        print(f"[{kind}] reads (median ms): {reads}", flush=True)
        return {"rows": loaded["rows"], "fan_out": fan_out, "latency": latency, "reads": reads}
    finally:
        for proc in reversed(procs):
            stop(proc)
        admin_execute(
            args.pg_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def report(small: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for name, ms in small["reads"].items():
        ratio = big["reads"].get(name, float("nan")) / ms if ms else float("nan")
        rows.append((name, ms, big["reads"].get(name), ratio, ratio <= TARGET_READ_RATIO))
    fan = big["fan_out"]["rate_median"] / small["fan_out"]["rate_median"]
    print("\n  read / count                        small ms    big ms   big/small   target <= 1.5")
    for name, s, b, ratio, ok in rows:
        print(f"  {name:34} {s:9.2f} {b:9.2f} {ratio:10.2f}   {'met' if ok else 'NOT MET'}")
    verdict = "met" if fan >= TARGET_FANOUT_RATIO else "NOT MET"
    small_rate, big_rate = small["fan_out"]["rate_median"], big["fan_out"]["rate_median"]
    print(f"\n  fan-out N=1000: small {small_rate}/s, big {big_rate}/s, big/small {fan:.2f}")
    print(f"  (target >= {TARGET_FANOUT_RATIO}: {verdict})")
    sl, bl = small["latency"], big["latency"]
    print(
        f"  publish -> first delivery p50/p99: small {sl['p50_ms']}/{sl['p99_ms']} ms,"
        f" big {bl['p50_ms']}/{bl['p99_ms']} ms"
    )
    return {
        "read_ratios": {name: round(ratio, 2) for name, _s, _b, ratio, _ok in rows},
        "fan_out_ratio": round(fan, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=4_000_000, help="history size (deliveries)")
    parser.add_argument("--rounds", type=int, default=5, help="fan-out publishes at N=1,000")
    parser.add_argument("--latency", type=int, default=100, help="publishes for the latency figures")
    parser.add_argument("--calls", type=int, default=20, help="calls per read")
    parser.add_argument("--pg-dsn", default=ADMIN_DSN)
    args = parser.parse_args(argv)
    small = measure("small", args)
    big = measure("big", args)
    summary = report(small, big)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"scale-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(
        json.dumps({"args": vars(args), "small": small, "big": big, **summary}, indent=2, default=str)
    )
    print(f"\n  saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
