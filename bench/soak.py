"""Memory under a long steady load: does every process level off?

Runs the production topology (API under gunicorn, a Celery worker with two
children, beat, the loopback sink of bench/fanout.py) on a throwaway PostgreSQL
database, publishes ``--rate`` stories a second to ``--subscriptions`` partners
for ``--minutes``, and samples every process's resident memory every
``--every`` seconds. For each process it prints the RSS after the warm-up, at the
end, and the growth rate over the last half of the run (MiB/min): a process has
levelled off when that rate is below ``LEVEL_MIB_PER_MIN``.

Usage: ``python bench/soak.py [--minutes 30] [--rate 20]``.
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
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from authoring import ADMIN_DSN, admin_execute, cms, database_url  # noqa: E402
from fanout import REDIS_URL, RESULTS_DIR, Api, Sink, set_subscriptions, start_stack, stop  # noqa: E402

LEVEL_MIB_PER_MIN = 0.25


def group_rss(pgid: int) -> dict[str, float]:
    """RSS (MiB) of every process in a process group, by ``name:pid``."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
            rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except (OSError, StopIteration, IndexError, ValueError):
            continue
        out[f"{comm}:{entry}"] = rss / 1024
    return out


def publisher(api: Api, rate: float, stop_at: float, counts: dict[str, int]) -> None:
    interval = 1.0 / rate
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        article = api.call(
            "POST", "/articles", {"headline": f"Soak {uuid.uuid4().hex}", "body": "<p>Text.</p>"}, expect=201
        )
        api.call("POST", f"/articles/{article['id']}/publish", {})
        counts["published"] += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares growth, MiB per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] / 60 for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="publishes per second")
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--pg-dsn", default=ADMIN_DSN)
    parser.add_argument(
        "--setting", action="append", default=[], metavar="CMS_X=VALUE", help="e.g. CMS_RENDER_CACHE_MB=2"
    )
    args = parser.parse_args(argv)

    name = f"cms_soak_{secrets.token_hex(3)}"
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db_url = database_url(args.pg_dsn, name).replace("postgresql://", "postgresql+psycopg://", 1)
    logs = Path(tempfile.mkdtemp(prefix="cms-soak-"))
    prefix = f"soak-{secrets.token_hex(3)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update(
        {
            "CMS_DATABASE_URL": db_url,
            "CMS_BROKER_URL": REDIS_URL,
            "CMS_BROKER_PREFIX": prefix,
            "CMS_SECRET_KEY": "soak",
            "CMS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "CMS_VAR_DIR": str(logs / "var"),
            "CMS_ACCESS_LOG": "false",
            **dict(item.split("=", 1) for item in args.setting),
        }
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    print(f"database {name}; logs in {logs}", flush=True)
    try:
        cms(env, "db", "upgrade")
        key = cms(env, "create-api-key", "--role", "admin", "--name", "soak").strip().splitlines()[-1]
        started_procs, sink_port, api_port = start_stack(env, logs, f"soak-{prefix}", beat_level="WARNING")
        procs.update(started_procs)
        time.sleep(3)
        api, sink = Api(api_port, key), Sink(sink_port)
        set_subscriptions(api, sink, args.subscriptions)
        started = time.monotonic()
        stop_at = started + args.minutes * 60
        counts = {"published": 0}
        thread = threading.Thread(target=publisher, args=(api, args.rate, stop_at, counts), daemon=True)
        thread.start()
        samples: dict[str, list[tuple[float, float]]] = {}
        while time.monotonic() < stop_at:
            time.sleep(min(args.every, max(0.0, stop_at - time.monotonic())))
            t = time.monotonic() - started
            for role, proc in procs.items():
                if role == "sink":  # the harness: it remembers every arrival by design
                    continue
                for proc_name, rss in group_rss(proc.pid).items():
                    samples.setdefault(f"{role} {proc_name}", []).append((t, rss))
            total = sum(points[-1][1] for points in samples.values())
            print(
                f"  {t / 60:5.1f} min: {counts['published']} published, RSS sum {total:.0f} MiB", flush=True
            )
        thread.join(timeout=30)
        delivered = sink.stats(since=time.time())["total"]
        report = {}
        print(f"\n  {'process':<32}{'after warm-up':>14}{'at end':>9}{'last-half MiB/min':>19}  levelled off")
        for proc_name, points in sorted(samples.items()):
            warm = next((rss for t, rss in points if t >= min(300, args.minutes * 60 / 6)), points[0][1])
            half = [p for p in points if p[0] >= points[-1][0] / 2]
            rate = slope(half)
            ok = rate < LEVEL_MIB_PER_MIN
            report[proc_name] = {"warm_mib": round(warm, 1), "end_mib": round(points[-1][1], 1),
                                 "last_half_mib_per_min": round(rate, 3), "levelled_off": ok}  # fmt: skip
            print(
                f"  {proc_name:<32}{warm:>14.1f}{points[-1][1]:>9.1f}{rate:>19.3f}  {'yes' if ok else 'NO'}"
            )
        RESULTS_DIR.mkdir(exist_ok=True)
        out = RESULTS_DIR / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(
            json.dumps(
                {
                    "args": vars(args),
                    "published": counts["published"],
                    "sink": delivered,
                    "processes": report,
                },
                indent=2,
                default=str,
            )
        )
        print(f"\n  {counts['published']} published, {delivered} delivered; saved {out}")
        return 0
    finally:
        for proc in reversed(list(procs.values())):
            stop(proc)
        admin_execute(
            args.pg_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


if __name__ == "__main__":
    sys.exit(main())
