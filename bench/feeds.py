"""Feeds benchmark (issue 14): a feed of 50 full entries, fresh and as a 304, next to bare Flask.

One run, on this machine, on a throwaway PostgreSQL database (dropped at the end):

* ``--stories`` copies of the seed story (``cms seed --publish``: the publishing
  commands, one article event each), all in its section, so the section's feed carries
  ``CMS_FEED_LENGTH`` (50) full entries;
* under the same gunicorn settings (those of ``bench/content.py``), all with
  ``CMS_PUBLIC_FEEDS=true``: bare Flask (``bench/bare_app.py``), the CMS with its
  per-process cache off (``CMS_CONTENT_CACHE_ENTRIES=0``: every GET reads the database
  and renders the feed) and the CMS with the default cache (built feeds kept per process
  until the next article event);
* **fresh renders/s** of ``GET /feeds/v1/<rss|atom|json>?section=S`` on the cache-off CMS,
  each next to bare Flask returning the same bytes, static (``GET /body/<fmt>``);
* **cached 200s/s** of the RSS feed on the default CMS (a poller that sends no validator);
* **304 revalidations/s** (``If-None-Match`` with each format's ``ETag``, the three URLs
  in turn) on the default CMS, next to bare Flask ``GET /ping`` (target: 0.60).

Each kind is measured twice, A-B-…-…-B-A (``--rounds`` times), with the driver of
``bench/content.py``, and averaged; each run notes how many gunicorn workers served it and
their CPU per request. Usage: ``python bench/feeds.py [--seconds 3] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from authoring import (  # the shared bench plumbing (same directory)
    CLOCK_TICKS,
    Gunicorn,
    admin_execute,
    background_load,
    children,
    cms,
    common_options,
    database_url,
    git_revision,
    processes,
    save_result,
)
from content import _drive, api, mean_of  # the driver and its averages
from psycopg import sql

TARGET_304 = 0.60
FORMATS = ("rss", "atom", "json")
ENTRY = {
    "rss": re.compile(rb"<item>"),
    "atom": re.compile(rb"<entry>"),
    "json": re.compile(rb'"content_html"'),
}


def feed_paths(section: str) -> dict[str, str]:
    return {fmt: f"/feeds/v1/{fmt}?section={quote(section)}" for fmt in FORMATS}


def entries(fmt: str, body: bytes) -> int:
    return len(ENTRY[fmt].findall(body))


Kind = tuple[Gunicorn, list[str], list[str]]  # the server, its paths, their request headers


def measure(pool: ProcessPoolExecutor, kind: Kind, args: argparse.Namespace, warm: bool) -> dict:
    """As ``content.phase`` (warm-up, then ``--seconds``), noting how many gunicorn workers
    did the measured run's work: a gthread worker serves every request of the connections
    it accepted, and the 16 connections are sometimes taken by one or two of them."""
    server, paths, headers = kind
    drive = (server.port, None, paths, headers)
    if warm:  # every connection asks for every path once
        pool.submit(_drive, *drive, 0, args.concurrency, True).result()
    pool.submit(_drive, *drive, min(1.0, args.seconds / 4), args.concurrency).result()
    workers = set(children(server.proc.pid))
    before = {pid: ticks for pid, _, _, ticks in processes() if pid in workers}
    result = pool.submit(_drive, *drive, args.seconds, args.concurrency).result()
    used = [ticks - before[pid] for pid, _, _, ticks in processes() if pid in before]
    result["busy_workers"] = sum(1 for t in used if t >= 0.1 * max(used, default=0) > 0)
    served = max(1.0, result["requests_per_s"] * args.seconds)
    result["cpu_us"] = round(sum(used) / CLOCK_TICKS / served * 1e6)  # the workers' CPU a request
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cms_bench_feeds_{secrets.token_hex(4)}"
    log_dir = Path(tempfile.mkdtemp(prefix="cms-bench-feeds-"))
    env = {
        **os.environ,
        "CMS_DATABASE_URL": database_url(args.pg_dsn, name),
        "CMS_SECRET_KEY": secrets.token_urlsafe(32),
        "CMS_ACCESS_LOG": "0",
        "CMS_LOG_LEVEL": "WARNING",
        "CMS_BROKER_URL": "",
        "CMS_PUBLIC_FEEDS": "true",
        "BENCH_BARE_BODIES": str(log_dir),
    }
    env.pop("CMS_CONTENT_CACHE_ENTRIES", None)  # the default, for the cached CMS
    out: dict[str, Any] = {
        "revision": git_revision(),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "busy_cores_before": background_load(10.0),  # waits up to 10 s for a quiet machine
        **{
            k: getattr(args, k)
            for k in ("stories", "worker_class", "workers", "threads", "concurrency", "seconds", "rounds")
        },
    }
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    servers: list[Gunicorn] = []
    pool = ProcessPoolExecutor(1)
    try:
        cms(env, "db", "upgrade")
        t0 = time.perf_counter()
        seeded = json.loads(cms(env, "seed", "--count", str(args.stories), "--publish", "--json"))
        out["seed_s"] = round(time.perf_counter() - t0, 1)
        uncached = Gunicorn("cms.wsgi:app", args, {**env, "CMS_CONTENT_CACHE_ENTRIES": "0"}, log_dir)
        servers.append(uncached)
        cached = Gunicorn("cms.wsgi:app", args, env, log_dir)
        servers.append(cached)
        uncached.wait_ready("/healthz")
        cached.wait_ready("/healthz")
        with psycopg.connect(env["CMS_DATABASE_URL"]) as conn:  # the seed story's section
            row = conn.execute("SELECT section FROM articles WHERE id = %s", (seeded["articles"][0]["id"],))
            section = row.fetchone()[0]
        out["section"] = section
        paths = feed_paths(section)
        etags, sizes = {}, {}
        for fmt, path in paths.items():
            reply = api(uncached.port, "GET", path, "")
            assert reply.status == 200, (path, reply.status, reply.body[:300])
            count = entries(fmt, reply.body)
            assert count == 50, f"{path}: {count} entries, expected 50"
            again = api(cached.port, "GET", path, "")
            assert again.headers["etag"] == reply.headers["etag"], "the two CMS disagree"
            etags[fmt], sizes[fmt] = reply.headers["etag"], len(reply.body)
            revalidated = api(cached.port, "GET", path, "", headers=f"If-None-Match: {etags[fmt]}\r\n")
            assert revalidated.status == 304, (path, revalidated.status)
            (log_dir / fmt).write_bytes(reply.body)  # what bare Flask serves
        out["feed_bytes"] = sizes
        bare = Gunicorn("bare_app:app", args, env, log_dir)
        servers.append(bare)
        bare.wait_ready("/ping")
        revalidate = (cached, list(paths.values()), [f"If-None-Match: {etags[f]}\r\n" for f in paths])
        kinds: dict[str, Kind] = {
            "bare_ping": (bare, ["/ping"], [""]),
            **{f"bare_{fmt}": (bare, [f"/body/{fmt}"], [""]) for fmt in FORMATS},
            **{f"fresh_{fmt}": (uncached, [paths[fmt]], [""]) for fmt in FORMATS},
            "cached_rss": (cached, [paths["rss"]], [""]),
            "revalidate_304": revalidate,
        }
        # A-B-C-C-B-A (``--rounds`` times): each kind measured in both orders, then averaged, so
        # a machine that speeds up or slows down during the run favours none of them.
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for kind in [*kinds, *reversed(kinds)] * args.rounds:
            runs[kind].append(measure(pool, kinds[kind], args, warm=not runs[kind]))
            last = runs[kind][-1]
            print(f"  {kind:15} {last['requests_per_s']:9.1f}/s  {last['busy_workers']} workers", flush=True)
        for kind, measured in runs.items():
            out[kind] = {
                **mean_of(measured),
                "busy_workers": [m["busy_workers"] for m in measured],
                "cpu_us": round(statistics.fmean(m["cpu_us"] for m in measured)),
            }
        rate = {kind: out[kind]["requests_per_s"] for kind in kinds}
        out["ratios"] = {
            **{f"fresh_{fmt}": round(rate[f"fresh_{fmt}"] / rate[f"bare_{fmt}"], 4) for fmt in FORMATS},
            "cached_rss": round(rate["cached_rss"] / rate["bare_rss"], 3),
            "revalidate_304": round(rate["revalidate_304"] / rate["bare_ping"], 3),
        }
        out["target_304_met"] = out["ratios"]["revalidate_304"] >= TARGET_304
        out["errors"] = sum(out[kind]["errors"] for kind in kinds)
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
        f"\nfeeds, section {r['section']!r}: {r['stories']} published stories, 50 full entries a feed"
        f" ({', '.join(f'{f} {n / 1024:.0f} KiB' for f, n in r['feed_bytes'].items())});"
        f" gunicorn {r['worker_class']} {r['workers']}x{r['threads']},"
        f" {r['concurrency']} keep-alive connections,"
        f" {r['seconds']:g} s a phase, each kind {2 * r['rounds']} times (A-B-..-B-A)"
    )
    print(
        f"  {r['started']}, {r['revision']}, {r['cpus']} CPUs,"
        f" {r['busy_cores_before']} cores busy before the run; errors: {r['errors']}"
    )

    def runs(kind: str) -> str:  # each run's rate and how many workers served it
        p = r[kind]
        return " ".join(f"{v:.0f}({w})" for v, w in zip(p["runs"], p["busy_workers"], strict=True))

    print(
        f"  {'measure':42} {'/s':>7}  {'baseline':9} {'/s':>7} {'ratio':>6}"
        "  server CPU us/request  runs/s (workers busy)"
    )
    for label, kind, base in (
        *((f"fresh render {f} (cache off), renders", f"fresh_{f}", f"bare_{f}") for f in FORMATS),
        ("cached 200 rss (default cache)", "cached_rss", "bare_rss"),
        ("304 If-None-Match (rss, atom, json)", "revalidate_304", "bare_ping"),
    ):
        print(
            f"  {label:42} {r[kind]['requests_per_s']:7.1f}  {base:9} {r[base]['requests_per_s']:7.1f}"
            f" {r['ratios'][kind]:6.3f}  {r[kind]['cpu_us']:>8} vs {r[base]['cpu_us']:<8}"
            f"  {runs(kind)} vs {runs(base)}; p50 {r[kind]['p50_ms']} ms"
        )
    verdict = "met" if r["target_304_met"] else "NOT MET"
    print(
        f"  304s: {r['ratios']['revalidate_304']:.3f} of bare Flask GET /ping, target {TARGET_304}: {verdict}"
    )
    print(
        "  Fresh renders: a CMS with CMS_CONTENT_CACHE_ENTRIES=0 (each GET reads the database and renders),"
        " against bare Flask returning the same bytes; the rest: the default per-process cache."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stories", type=int, default=60, help="published copies of the seed story (>= 50)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=1, help="A-B-..-B-A cycles (each: every kind twice)")
    p.add_argument("--concurrency", type=int, default=16)
    common_options(p, workers=4)
    args = p.parse_args(argv)
    args.preload = False
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print_table(result)
    print(json.dumps(result, separators=(",", ":")))
    if not args.no_save:
        save_result("feeds", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
