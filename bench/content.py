"""Content API benchmark: partner reads, 304 revalidations, the change feed, search.

One run, on this machine, on a throwaway PostgreSQL database (dropped at the end):

* ``--articles`` published articles (default 100,000), bulk-loaded with SQL shaped
  exactly like what the publishing commands write (article, version 1, its outbox
  event with a feed position, the published projection and its search vector), so
  the run does not spend half an hour publishing through the API;
* bare Flask (``bench/bare_app.py``, ``GET /ping``) and the CMS (``cms.wsgi:app``)
  under the same gunicorn settings (gthread, keep-alive), each driven from another
  process by the keep-alive HTTP/1.1 driver of ``bench/authoring.py``;
* ``GET /content/v1/articles/{id}`` with a partner key: full reads/s, and 304
  revalidations/s (``If-None-Match`` with the article's ETag), as ratios to bare Flask
  (targets: 0.35 and 0.60);
* the change feed drained from the start of the log (``--articles`` changes) in pages
  of ``--page`` changes: changes/s and the time of each page, first to last (the cost
  must stay flat);
* ``GET /content/v1/articles?q=…`` over all the articles, one word at a time from
  the articles' vocabulary and some rare words: p50 and p99.

Usage: ``python bench/content.py [--articles 100000] [--seconds 8]``;
``--articles 5000 --seconds 2`` is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from authoring import (  # the shared bench plumbing (same directory)
    ADMIN_DSN,
    RESULTS_DIR,
    ROOT,
    Connection,
    Gunicorn,
    _bodies,
    admin_execute,
    cms,
    database_url,
)
from psycopg import sql

TARGET_READ = 0.35
TARGET_304 = 0.60
STRAPI_NOTE = "Strapi 5 on this class of machine: ~240 reads/s"
SECTIONS = ["politics", "economy", "world", "national", "sport"]
RARE = ["Valdai", "Butler", "Pennsylvania", "Kamala", "Sochi"]


# --------------------------------------------------------------------------- data


def seed(url: str, count: int) -> None:
    """``count`` published articles, as the commands would have left them."""
    bodies = _bodies(32)
    rng = random.Random(11)
    with psycopg.connect(url, autocommit=False) as conn:
        rows = []
        for n in range(count):
            body = bodies[n % len(bodies)]
            if n % 50 == 0:
                body = body.replace("</p>", f" {RARE[n // 50 % len(RARE)]} said.</p>", 1)
            data = {
                "headline": f"Headline {n} {rng.choice(['budget', 'vote', 'strike', 'summit'])}",
                "standfirst": "A standfirst for the benchmark story.",
                "body": body,
                "byline": "Bench Desk",
                "dateline": "SOFIA",
                "section": SECTIONS[n % len(SECTIONS)],
                "tags": [],
                "language": "en",
                "slug": f"bench-{n}",
                "lead_image": None,
                "credits": ["BTA"],
                "editor_note": None,
                "internal_note": None,
            }
            rows.append((n, json.dumps(data)))
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE seed (n int, data jsonb)")
            with cur.copy("COPY seed (n, data) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            for statement in SEED_SQL.split(";"):
                if statement.strip():
                    cur.execute(statement, {"count": count} if "%(count)s" in statement else None)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # not during the first measured phase


SEED_SQL = """
CREATE TEMP TABLE ids AS
    SELECT n, data, gen_random_uuid() AS id, gen_random_uuid() AS event_id,
           now() - make_interval(secs => %(count)s - n) AS at
    FROM seed;
INSERT INTO articles (id, slug, state, headline, section, section_key, language, current_version,
                      published_version, event_sequence, created_at, updated_at, first_published_at,
                      published_at)
    SELECT id, data->>'slug', 'published', data->>'headline', data->>'section', data->>'section',
           'en', 1, 1, 1, at, at, at, at FROM ids;
INSERT INTO article_versions (article_id, number, data, message, created_at, created_by, prev_hash,
                              content_hash)
    SELECT id, 1, data, NULL, at, 'bench', NULL, md5(data::text) || md5(n::text) FROM ids;
INSERT INTO outbox_events (id, type, article_id, version, sequence, occurred_at, actor, data,
                           relayed_at, feed_position)
    SELECT event_id, 'article.published', id, 1, 1, at, 'bench', '{}'::jsonb, at, n + 1 FROM ids;
UPDATE feed_clock SET position = %(count)s WHERE id = 1;
INSERT INTO published_articles (article_id, state, version, sequence, event_id, slug, section_key,
                                language, tag_keys, kill_reason, created_at, first_published_at,
                                published_at, changed_at, updated_by, search)
    SELECT id, 'published', 1, 1, event_id, data->>'slug', data->>'section', 'en', '[]'::jsonb, NULL,
           at, at, at, at, 'bench',
           setweight(to_tsvector('english', data->>'headline'), 'A')
           || setweight(to_tsvector('english', data->>'standfirst'), 'B')
           || to_tsvector('english', regexp_replace(data->>'body', '<[^>]+>', ' ', 'g'))
           || setweight(to_tsvector('simple', data->>'headline'), 'A')
           || setweight(to_tsvector('simple', data->>'standfirst'), 'B')
           || to_tsvector('simple', regexp_replace(data->>'body', '<[^>]+>', ' ', 'g'))
    FROM ids;
"""


# --------------------------------------------------------------------------- load


def _drive(
    port: int,
    key: str | None,
    paths: list[str],
    headers: list[str],
    seconds: float,
    conc: int,
    sweep: bool = False,
) -> dict:
    """Entry point of the driver process: ``conc`` keep-alive connections for ``seconds``
    (``sweep``: instead, each connection asks for every path once, to warm the caches)."""

    async def main() -> dict:
        ok, errors, lat = 0, 0, []
        end = time.monotonic() + seconds
        rng = random.Random(3)

        async def one() -> None:
            nonlocal ok, errors
            conn = Connection(port, key)
            order = iter(range(len(paths))) if sweep else None
            while time.monotonic() < end or order is not None:
                i = rng.randrange(len(paths)) if order is None else next(order, -1)
                if i < 0:
                    break
                t0 = time.perf_counter()
                reply = await conn.request("GET", paths[i], headers=headers[i])
                lat.append(time.perf_counter() - t0)
                if reply.status in (200, 304):
                    ok += 1
                else:
                    errors += 1
            conn.close()

        t0 = time.monotonic()
        await asyncio.gather(*(one() for _ in range(conc)))
        elapsed = time.monotonic() - t0
        lat.sort()
        return {
            "requests_per_s": round(ok / elapsed, 1),
            "errors": errors,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None,
        }

    return asyncio.run(main())


def phase(
    pool: ProcessPoolExecutor,
    port: int,
    key: str | None,
    paths: list[str],
    headers: list[str],
    args: argparse.Namespace,
    warm: bool = True,
) -> dict:
    # Warm up: every connection asks for every path once (each gunicorn worker then holds
    # the rows and rendered items of the paths its connections asked for), then a short run.
    if warm:
        pool.submit(_drive, port, key, paths, headers, 0, args.concurrency, True).result()
    pool.submit(_drive, port, key, paths, headers, min(1.0, args.seconds / 4), args.concurrency).result()
    return pool.submit(_drive, port, key, paths, headers, args.seconds, args.concurrency).result()


def mean_of(runs: list[dict]) -> dict:
    """Requests/s averaged over the runs of one kind; latencies and errors of all of them."""
    return {
        "requests_per_s": round(statistics.fmean(r["requests_per_s"] for r in runs), 1),
        "runs": [r["requests_per_s"] for r in runs],
        "errors": sum(r["errors"] for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
    }


def api(port: int, method: str, path: str, key: str, body: Any = None, headers: str = "") -> Any:
    async def call() -> Any:
        conn = Connection(port, key)
        reply = await conn.request(
            method, path, json.dumps(body).encode() if body is not None else None, headers
        )
        conn.close()
        return reply

    return asyncio.run(call())


def drain_feed(port: int, key: str, cursor: str, page: int) -> dict:
    """The whole log from ``cursor``, timing each page."""
    times, changes = [], 0
    t_all = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        reply = api(port, "GET", f"/content/v1/changes?limit={page}&after={cursor}", key)
        times.append(time.perf_counter() - t0)
        body = json.loads(reply.body)
        changes += len(body["changes"])
        cursor = body["next"]
        if not body["more"]:
            break
    elapsed = time.perf_counter() - t_all
    tenth = max(1, len(times) // 10)
    first, last = statistics.median(times[:tenth]), statistics.median(times[-tenth:])
    return {
        "changes": changes,
        "pages": len(times),
        "changes_per_s": round(changes / elapsed, 1),
        "page_ms_first_tenth_median": round(first * 1000, 2),
        "page_ms_last_tenth_median": round(last * 1000, 2),
        "last_vs_first": round(last / first, 2),
        "page_ms_p99": round(sorted(times)[int(len(times) * 0.99)] * 1000, 2),
    }


def search(port: int, key: str, rounds: int) -> dict:
    vocabulary = sorted(
        {
            w.strip(".,").lower()
            for b in _bodies(32)
            for w in b.replace("<p>", " ").split()
            if w.isalpha() and len(w) > 4
        }
    )
    rng = random.Random(5)
    words = [rng.choice(vocabulary) for _ in range(rounds)] + RARE * 4
    times, hits = [], []
    for word in words:
        t0 = time.perf_counter()
        reply = api(port, "GET", f"/content/v1/articles?limit=20&q={word}", key)
        times.append(time.perf_counter() - t0)
        assert reply.status == 200, reply.body[:300]
        hits.append(len(json.loads(reply.body)["items"]))
    times.sort()
    return {
        "queries": len(words),
        "p50_ms": round(times[len(times) // 2] * 1000, 2),
        "p99_ms": round(times[int(len(times) * 0.99)] * 1000, 2),
        "mean_hits": round(statistics.fmean(hits), 1),
    }


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cms_bench_content_{secrets.token_hex(4)}"
    url = database_url(args.pg_dsn, name)
    env = {
        **os.environ,
        "CMS_DATABASE_URL": url,
        "CMS_SECRET_KEY": secrets.token_urlsafe(32),
        "CMS_ACCESS_LOG": "0",
        "CMS_LOG_LEVEL": "WARNING",
        "CMS_BROKER_URL": "",
        "CMS_PARTNER_RATE_LIMIT": "100000000",
        "CMS_CONTENT_MAX_AGE": "30",
    }
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    servers: list[Gunicorn] = []
    out: dict[str, Any] = {
        "articles": args.articles,
        "workers": args.workers,
        "threads": args.threads,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
    }
    pool = ProcessPoolExecutor(1)
    try:
        cms(env, "db", "upgrade")
        t0 = time.perf_counter()
        seed(url, args.articles)
        out["seed_s"] = round(time.perf_counter() - t0, 1)
        admin = cms(env, "create-api-key", "--role", "admin", "--name", "bench").strip().splitlines()[-1]
        log_dir = Path(tempfile.mkdtemp(prefix="cms-bench-content-"))
        bare = Gunicorn("bare_app:app", args, env, log_dir)
        servers.append(bare)
        app = Gunicorn("cms.wsgi:app", args, env, log_dir)
        servers.append(app)
        bare.wait_ready("/ping")
        app.wait_ready("/healthz")
        partner = json.loads(
            api(
                app.port,
                "POST",
                "/api/v1/partners",
                admin,
                {"name": "Bench partner", "email": "bench@partner.example"},
            ).body
        )
        key = json.loads(
            api(app.port, "POST", f"/api/v1/partners/{partner['id']}/keys", admin, {"name": "bench"}).body
        )["key"]
        with psycopg.connect(url) as conn:
            ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT article_id FROM published_articles ORDER BY random() LIMIT 1000"
                )
            ]
            cursor_secret = conn.execute("SELECT cursor_secret FROM partners").fetchone()[0]
        paths = [f"/content/v1/articles/{i}" for i in ids]
        etag = api(app.port, "GET", paths[0], key).headers["etag"]  # every article is at v1.1
        # A-B-C-C-B-A: each kind measured twice, in opposite orders, then averaged, so
        # a machine that speeds up or slows down during the run favours none of them.
        kinds = {
            "bare_ping": (bare.port, None, ["/ping"], [""]),
            "full_read": (app.port, key, paths, [""] * len(paths)),
            "revalidate_304": (app.port, key, paths, [f"If-None-Match: {etag}\r\n"] * len(paths)),
        }
        runs: dict[str, list[dict]] = {name: [] for name in kinds}
        for name in [*kinds, *reversed(kinds)]:
            runs[name].append(phase(pool, *kinds[name], args, warm=not runs[name]))
        for name, measured in runs.items():
            out[name] = mean_of(measured)
        out["bare_ping_again"] = runs["bare_ping"][1]
        out["bare_ping"] = runs["bare_ping"][0]
        ceiling = (out["bare_ping"]["requests_per_s"] + out["bare_ping_again"]["requests_per_s"]) / 2
        out["read_ratio"] = round(out["full_read"]["requests_per_s"] / ceiling, 3)
        out["revalidate_ratio"] = round(out["revalidate_304"]["requests_per_s"] / ceiling, 3)
        sys.path.insert(0, str(ROOT))
        from cms.events import feed

        start = feed.log_cursor(bytes.fromhex(cursor_secret), 0)
        out["feed"] = drain_feed(app.port, key, start, args.page)
        out["search"] = search(app.port, key, args.queries)
    finally:
        pool.shutdown()
        for server in servers:
            server.stop()
        if not args.keep_db:
            admin_execute(
                args.pg_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    return out


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\ncontent API, {r['articles']:,} published articles,"
        f" gunicorn gthread {r['workers']}x{r['threads']},"
        f" {r['concurrency']} keep-alive connections, {r['seconds']:g} s a phase (seeded in {r['seed_s']} s)"
    )
    bare = (r["bare_ping"]["requests_per_s"] + r["bare_ping_again"]["requests_per_s"]) / 2
    print(
        f"  bare Flask GET /ping            {bare:9.1f}/s  (before {r['bare_ping']['requests_per_s']},"
        f" after {r['bare_ping_again']['requests_per_s']})"
    )
    for label, name, ratio, target in (
        ("full read GET /content/v1/...", "full_read", "read_ratio", TARGET_READ),
        ("304 revalidation", "revalidate_304", "revalidate_ratio", TARGET_304),
    ):
        p = r[name]
        verdict = "met" if r[ratio] >= target else "NOT MET"
        print(
            f"  {label:31} {p['requests_per_s']:9.1f}/s  = {r[ratio]:.2f} of bare"
            f" (target {target}: {verdict});"
            f" runs {p['runs']}; p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, errors {p['errors']}"
        )
    f = r["feed"]
    print(
        f"  change feed: {f['changes']:,} changes in {f['pages']} pages, {f['changes_per_s']:,.0f} changes/s;"
        f" page {f['page_ms_first_tenth_median']} ms (first tenth) -> {f['page_ms_last_tenth_median']} ms"
        f" (last tenth) = {f['last_vs_first']}x, p99 {f['page_ms_p99']} ms"
    )
    s = r["search"]
    print(
        f"  search q= over all articles: {s['queries']} queries, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms,"
        f" {s['mean_hits']} hits a page on average"
    )
    print(f"  ({STRAPI_NOTE})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--articles", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument(
        "--worker-class",
        default="gthread",
        choices=["gthread", "sync"],
        help="sync closes every connection: only for comparison",
    )
    p.add_argument("--page", type=int, default=1000, help="changes per feed page")
    p.add_argument("--queries", type=int, default=200, help="search queries (plus 20 of rare words)")
    p.add_argument("--pg-dsn", default=ADMIN_DSN)
    p.add_argument("--keep-db", action="store_true")
    args = p.parse_args(argv)
    args.preload = False
    return args


def main(argv: list[str] | None = None) -> int:
    result = run(parse_args(argv))
    print_table(result)
    RESULTS_DIR.mkdir(exist_ok=True)
    saved = RESULTS_DIR / f"content-{time.strftime('%Y%m%dT%H%M%S')}.json"
    saved.write_text(json.dumps(result, indent=2))
    print(f"(saved {saved.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
