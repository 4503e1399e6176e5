"""Webhook fan-out benchmark: publish -> delivered, against a bare aiohttp loop and the naive design.

One run, on this machine (see bench/README.md):

* a throwaway PostgreSQL database (``cms db upgrade``, dropped at the end), a
  private key prefix on Redis, the API under gunicorn, one Celery worker
  (``--concurrency 2``) and beat, exactly as docker compose runs them;
* a fast loopback sink (``bench/sink.py``, raw asyncio) that notes when each
  ``webhook-id`` arrives, listening on ``--hosts`` ports (50): each is a receiving
  host to the sender, which opens at most CMS_WEBHOOK_CONNECTIONS_PER_HOST
  connections to one, so the subscriptions are spread over them as partners are;
* for N = 10, 100, 1,000 subscriptions: publishes, one at a time, each timed
  from just before its ``POST /publish`` to the arrival of its last delivery
  (deliveries/s = N / that time);
* latency from the publish request to the first delivery, over 200 publishes;
* the ceiling: a bare aiohttp loop in this process posting the same signed
  payloads to the same sink (no database, no broker);
* the naive design: one Celery task per delivery doing ``requests.post``, and
  its single hop (enqueue -> arrival) as the latency baseline;
* isolation: N = 1,000 with 10% of the endpoints hanging until the 15 s
  timeout (on another receiving host: connections are limited per host); the
  rate at which the healthy 90% get theirs.

Usage: ``python bench/fanout.py [--rounds 5] [--latency 200] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from authoring import ADMIN_DSN, BIN, HOST, ROOT, admin_execute, cms, database_url, free_port  # noqa: E402
from standardwebhooks.webhooks import Webhook  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
REDIS_URL = os.environ.get("CMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET_VS_BARE = 0.8
TARGET_VS_NAIVE = 10.0
# publish -> first delivery against one naive Celery hop (enqueue -> requests.post arrival)
TARGET_P50_VS_HOP = 2.5
TARGET_P99_VS_HOP = 5.0
TARGET_HANG_RATIO = 0.8


class Api:
    """A keep-alive HTTP client for the CMS API."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(method, "/api/v1" + path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
                if attempt:
                    raise
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None


class Sink:
    """The sink's control port, and the ports subscriptions point at: each port is a
    receiving host to the sender, which limits its connections per host."""

    def __init__(self, port: int, hosts: list[int] | None = None, hang_port: int | None = None) -> None:
        self.port = port
        self.hosts = hosts or [port]
        self.hang_port = hang_port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)

    def url(self, path: str, slot: int = 0) -> str:
        """Subscription number ``slot`` goes to host ``slot % hosts``; the hanging
        endpoints are one more host, so they hold its connections, not the others'."""
        port = self.hang_port if self.hang_port and path.startswith("/hang/") else None
        return f"http://{HOST}:{port or self.hosts[slot % len(self.hosts)]}{path}"

    def stats(self, since: float = 0.0) -> dict[str, Any]:
        self.conn.request("GET", f"/_stats?since={since}")
        return json.loads(self.conn.getresponse().read())

    def reset(self) -> None:
        self.conn.request("POST", "/_reset", body=b"", headers={"Content-Length": "0"})
        self.conn.getresponse().read()

    def wait(self, event_id: str, count: int, timeout: float = 120.0) -> tuple[float, float]:
        """First and last arrival of ``count`` deliveries of ``event_id`` (a long poll)."""
        waiter = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            waiter.request("GET", f"/_wait?id={event_id}&count={count}")
            first, last, _count = json.loads(waiter.getresponse().read())
        except TimeoutError:
            raise RuntimeError(f"event {event_id}: fewer than {count} deliveries after {timeout} s") from None
        finally:
            waiter.close()
        return first, last


def spawn(
    name: str, args: list[str], env: dict[str, str], logs: Path, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for_log(logs: Path, name: str, marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = logs / f"{name}.log"
        if path.exists() and marker in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not start; see {logs / (name + '.log')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def start_stack(
    env: dict[str, str],
    logs: Path,
    name: str,
    *,
    concurrency: int = 2,
    beat_level: str = "INFO",
    sink_ports: list[int] | None = None,
) -> tuple[dict[str, subprocess.Popen[bytes]], int, int]:
    """The sink, the API (gunicorn, 2 workers), one Celery worker and beat, as docker
    compose runs them: ``(processes by role, sink port, API port)``. Stop with ``stop``.
    The sink listens on ``sink_ports`` if given (the first is the one returned)."""
    sink_ports = sink_ports or [free_port()]
    sink_port, api_port = sink_ports[0], free_port()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    procs["sink"] = spawn(
        "sink", [sys.executable, str(BENCH_DIR / "sink.py"), "--port", *map(str, sink_ports)], env, logs
    )
    wait_for_log(logs, "sink", "listening")
    procs["api"] = spawn(
        "api", [str(BIN / "gunicorn"), "-w", "2", "-b", f"{HOST}:{api_port}", "cms.wsgi:app"], env, logs
    )
    procs["worker"] = spawn(
        "worker",
        [str(BIN / "celery"), "-A", "workers", "worker", f"--concurrency={concurrency}", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h"],
        {**env, "CMS_LOG_LEVEL": "WARNING"},  # (Celery's --loglevel gives way to CMS_LOG_LEVEL)
        logs,
    )  # fmt: skip
    procs["beat"] = spawn(
        "beat", [str(BIN / "celery"), "-A", "workers", "beat"], {**env, "CMS_LOG_LEVEL": beat_level}, logs
    )
    wait_for_log(logs, "api", "Booting worker")
    if beat_level == "INFO":
        wait_for_log(logs, "beat", "beat: Starting")
    return procs, sink_port, api_port


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_role(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds used so far by each of our process groups, PostgreSQL and this process."""
    groups = {proc.pid: role for role, proc in procs.items()}
    totals: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            sid, ticks = int(fields[3]), int(fields[11]) + int(fields[12])
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except (OSError, IndexError, ValueError):
            continue
        role = groups.get(sid)  # our processes start their own sessions
        if role is None:
            role = (
                "postgres"
                if comm.startswith("postgres")
                else ("bench" if int(entry) == os.getpid() else None)
            )
        if role:
            totals[role] = totals.get(role, 0.0) + ticks / CLOCK_TICKS
    return totals


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --------------------------------------------------------------------------- scenarios


def set_subscriptions(api: Api, sink: Sink, n: int, extra: list[tuple[str, list[str]]] = ()) -> None:
    """Exactly ``n`` plain subscriptions to the sink, plus ``extra`` (path, tags filter) ones."""
    while items := api.call("GET", "/subscriptions?limit=100")["items"]:
        for item in items:
            api.call("DELETE", f"/subscriptions/{item['id']}", expect=204)
    for i in range(n):
        api.call("POST", "/subscriptions", {"url": sink.url(f"/s/{i}", i)}, expect=201)
    for i, (path, tags) in enumerate(extra):
        api.call("POST", "/subscriptions", {"url": sink.url(path, i), "tags": tags}, expect=201)


def publish(
    api: Api, tags: list[str] | None = None, answered: list[tuple[float, float]] | None = None
) -> tuple[str, float]:
    """Create an article and publish it: (event id, time just before the publish
    request). ``answered`` collects, per publish, how long the request took and when
    the server recorded the event (its ``occurred_at``, epoch seconds)."""
    article = api.call(
        "POST",
        "/articles",
        {"headline": f"Bench {uuid.uuid4().hex}", "body": BODY, "tags": tags or []},
        expect=201,
    )
    started = time.time()
    event = api.call("POST", f"/articles/{article['id']}/publish", {})["event"]
    if answered is not None:
        recorded = datetime.fromisoformat(event["occurred_at"]).timestamp()
        answered.append((time.time() - started, recorded))
    return event["id"], started


def fan_out_rates(
    api: Api,
    sink: Sink,
    n: int,
    rounds: int,
    healthy: int | None = None,
    procs: dict[str, subprocess.Popen[bytes]] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    healthy = n if healthy is None else healthy
    for _ in range(2):  # warm-up
        event, _t0 = publish(api, tags)
        sink.wait(event, healthy)
    rates, spans = [], []
    before = cpu_by_role(procs or {})
    for _ in range(rounds):
        event, t0 = publish(api, tags)
        _first, last = sink.wait(event, healthy)
        spans.append(last - t0)
        rates.append(healthy / (last - t0))
    after = cpu_by_role(procs or {})
    cpu_ms = {role: round((after[role] - before.get(role, 0.0)) * 1000 / rounds, 1) for role in after}
    return {
        "cpu_ms_per_publish": cpu_ms,
        "n": n,
        "healthy": healthy,
        "rounds": rounds,
        "rate_median": round(statistics.median(rates), 1),
        "rate_aggregate": round(healthy * rounds / sum(spans), 1),
        "seconds_median": round(statistics.median(spans), 4),
    }


def first_delivery_latency(api: Api, sink: Sink, count: int, n: int) -> dict[str, Any]:
    latencies: list[float] = []
    engine: list[float] = []
    answered: list[tuple[float, float]] = []
    for _ in range(count):
        event, t0 = publish(api, answered=answered)
        first, _last = sink.wait(event, n)
        latencies.append((first - t0) * 1000)
        engine.append((first - answered[-1][1]) * 1000)
    return {
        "publishes": count,
        "subscriptions": n,
        # The publish request alone, part of the span measured from before it.
        "request_p50_ms": round(percentile([r * 1000 for r, _ in answered], 50), 2),
        # From the event's recording (inside the publish transaction, before its commit)
        # to the first delivery: what the delivery engine adds, as a Celery hop measures
        # enqueue -> arrival. Same clock: the server and the sink run on this machine.
        "engine_p50_ms": round(percentile(engine, 50), 2),
        "engine_p99_ms": round(percentile(engine, 99), 2),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
    }


def signed_jobs(db_url: str, n: int) -> list[tuple[str, str, bytes, Webhook]]:
    """(url, event id, body, signer) for the latest event's N deliveries, as the engine sent them."""
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        rows = conn.execute(
            """SELECT s.url, d.event_id::text, p.body, s.secret
               FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
               JOIN event_payloads p ON p.event_id = d.event_id AND p.format = d.format
               WHERE d.event_id = (SELECT event_id FROM deliveries ORDER BY created_at DESC LIMIT 1)"""
        ).fetchall()
    assert len(rows) == n, (len(rows), n)
    return [(url, eid, body.encode(), Webhook(secret)) for url, eid, body, secret in rows]


async def _bare(jobs: list[tuple[str, str, bytes, Webhook]], rounds: int) -> list[float]:
    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0)
    rates = []
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:

        async def post(url: str, msg_id: str, body: bytes, signer: Webhook) -> None:
            now = datetime.now(UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signer.sign(msg_id, now, body.decode()),
            }
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()

        for i in range(rounds + 2):
            started = time.perf_counter()
            await asyncio.gather(*(post(*job) for job in jobs))
            if i >= 2:  # the first two rounds warm the connection pool, as the engine's warm-up does
                rates.append(len(jobs) / (time.perf_counter() - started))
    return rates


def bare_rate(jobs: list[tuple[str, str, bytes, Webhook]], rounds: int) -> dict[str, Any]:
    rates = asyncio.run(_bare(jobs, rounds))
    return {"n": len(jobs), "rounds": rounds, "rate_median": round(statistics.median(rates), 1)}


def naive_rate(
    env: dict[str, str],
    logs: Path,
    jobs: list[tuple[str, str, bytes, Webhook]],
    sink: Sink,
    secrets_by_url: dict[str, str],
    rounds: int,
    hops: int,
) -> dict[str, Any]:
    """The naive design's rate at N, then its single-hop latency (one task, one POST) over ``hops``."""
    prefix = f"naive-{uuid.uuid4().hex[:6]}:"
    naive_env = {**env, "NAIVE_BROKER_URL": REDIS_URL, "NAIVE_PREFIX": prefix, "PYTHONPATH": str(BENCH_DIR)}
    worker = spawn(
        "naive-worker",
        [
            str(BIN / "celery"),
            "-A",
            "naive_worker",
            "worker",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"naive-{prefix}@%h",
        ],
        naive_env,
        logs,
        cwd=BENCH_DIR,
    )
    try:
        from celery import Celery

        client = Celery("naive", broker=REDIS_URL, set_as_current=False)
        client.conf.broker_transport_options = {"global_keyprefix": prefix}
        time.sleep(3)  # worker start-up
        rates = []
        for _ in range(rounds):
            msg_id = str(uuid.uuid4())  # one new "event" per round, as the sink counts per id
            started = time.time()
            for url, _eid, body, _key in jobs:
                client.send_task("naive.post", args=[url, msg_id, body.decode(), secrets_by_url[url]])
            _first, last = sink.wait(msg_id, len(jobs), timeout=300)
            rates.append(len(jobs) / (last - started))
        url, _eid, body, _key = jobs[0]
        hop_ms = []
        for _ in range(hops):
            msg_id = str(uuid.uuid4())
            started = time.time()
            client.send_task("naive.post", args=[url, msg_id, body.decode(), secrets_by_url[url]])
            first, _last = sink.wait(msg_id, 1, timeout=60)
            hop_ms.append((first - started) * 1000)
        return {
            "n": len(jobs),
            "rounds": rounds,
            "rate_median": round(statistics.median(rates), 1),
            "hop": {
                "hops": hops,
                "p50_ms": round(percentile(hop_ms, 50), 2),
                "p99_ms": round(percentile(hop_ms, 99), 2),
            },
        }
    finally:
        stop(worker)


BODY = "<p>" + " ".join(["The cabinet approved the draft budget late on Tuesday."] * 60) + "</p>"


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"cms_fanout_{secrets.token_hex(4)}"
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db_url = database_url(args.pg_dsn, name).replace("postgresql://", "postgresql+psycopg://", 1)
    logs = Path(tempfile.mkdtemp(prefix="cms-fanout-"))
    prefix = f"bench-{secrets.token_hex(3)}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update(
        {
            "CMS_DATABASE_URL": db_url,
            "CMS_BROKER_URL": REDIS_URL,
            "CMS_BROKER_PREFIX": prefix,
            "CMS_SECRET_KEY": "bench",
            "CMS_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "CMS_VAR_DIR": str(logs / "var"),
            "CMS_WEBHOOK_MAX_IN_FLIGHT": "4",
            **dict(item.split("=", 1) for item in args.setting),
        }
    )
    procs: list[subprocess.Popen[bytes]] = []
    print(f"database {name}; logs in {logs}", flush=True)
    try:
        cms(env, "db", "upgrade")
        key = cms(env, "create-api-key", "--role", "admin", "--name", "bench").strip().splitlines()[-1]
        hosts, hang_port = [free_port() for _ in range(args.hosts)], free_port()
        roles, sink_port, api_port = start_stack(
            env, logs, f"bench-{prefix}", concurrency=args.concurrency, sink_ports=[*hosts, hang_port]
        )
        procs.extend(roles.values())
        time.sleep(2)
        api, sink = Api(api_port, key), Sink(sink_port, hosts, hang_port)

        results: dict[str, Any] = {"fan_out": [], "started": datetime.now(UTC).isoformat(timespec="seconds")}
        for n in args.sizes:
            rounds = args.rounds if n >= 1000 else args.rounds * 2
            set_subscriptions(api, sink, n)
            result = fan_out_rates(api, sink, n, rounds, procs=roles)
            results["fan_out"].append(result)
            print(
                f"  N={n:>5}: {result['rate_median']:>8.1f} deliveries/s (median of {rounds}; "
                f"{result['seconds_median'] * 1000:.1f} ms per publish; "
                f"CPU ms per publish: {result['cpu_ms_per_publish']})",
                flush=True,
            )
            if n == max(args.sizes):
                jobs = signed_jobs(db_url, n)
                with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                    secrets_by_url = dict(conn.execute("SELECT url, secret FROM subscriptions").fetchall())

        set_subscriptions(api, sink, 10)
        results["latency"] = first_delivery_latency(api, sink, args.latency, 10)
        print(
            f"  latency publish -> first delivery over {args.latency} publishes (N=10): "
            f"p50 {results['latency']['p50_ms']} ms, p99 {results['latency']['p99_ms']} ms "
            f"(the publish request alone: p50 {results['latency']['request_p50_ms']} ms; event recorded "
            f"-> first delivery p50 {results['latency']['engine_p50_ms']} ms, "
            f"p99 {results['latency']['engine_p99_ms']} ms)",
            flush=True,
        )

        results["bare"] = bare_rate(jobs, args.rounds)
        print(
            f"  bare aiohttp loop, N={len(jobs)}: {results['bare']['rate_median']} deliveries/s", flush=True
        )

        with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            secrets_by_url = dict(conn.execute("SELECT url, secret FROM subscriptions").fetchall())
        naive_jobs = [j for j in jobs if j[0] in secrets_by_url] or jobs
        if not set(j[0] for j in jobs) <= set(secrets_by_url):
            with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                secrets_by_url = dict(conn.execute("SELECT url, secret FROM subscriptions").fetchall())
        results["naive"] = naive_rate(
            env, logs, naive_jobs, sink, secrets_by_url, max(1, args.rounds // 2), args.latency
        )
        hop = results["naive"]["hop"]
        print(
            f"  naive (task per delivery, requests.post), N={len(naive_jobs)}: "
            f"{results['naive']['rate_median']} deliveries/s; one hop over {hop['hops']} tasks: "
            f"p50 {hop['p50_ms']} ms, p99 {hop['p99_ms']} ms",
            flush=True,
        )

        # Isolation, with its own baseline measured just before: 90% plain
        # subscriptions, 10% healthy "spare" ones and 10% hanging ones, selected
        # by tag. First all 1,000 healthy, then 900 healthy beside 100 hanging.
        n = max(args.sizes)
        hanging = n // 10
        extra = [(f"/s/spare-{i}", ["spare"]) for i in range(hanging)]
        extra += [(f"/hang/{i}", ["hang"]) for i in range(hanging)]
        set_subscriptions(api, sink, n - hanging, extra)
        results["healthy_baseline"] = fan_out_rates(api, sink, n, args.rounds, procs=roles, tags=["spare"])
        results["hanging"] = fan_out_rates(
            api, sink, n, args.rounds, healthy=n - hanging, procs=roles, tags=["hang"]
        )
        print(
            f"  N={n}, all healthy: {results['healthy_baseline']['rate_median']} deliveries/s; "
            f"with {hanging} hanging endpoints the healthy get "
            f"{results['hanging']['rate_median']} deliveries/s",
            flush=True,
        )
        results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        results["hosts"] = args.hosts
        return results
    finally:
        for proc in reversed(procs):
            stop(proc)
        admin_execute(
            args.pg_dsn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        try:
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            for pattern in (f"{prefix}*", "naive-*"):
                keys = list(r.scan_iter(match=pattern, count=1000))
                if keys:
                    r.delete(*keys)
        except Exception as exc:  # cleanup only
            print(f"could not clean up Redis keys: {exc}", file=sys.stderr)


def report(results: dict[str, Any]) -> None:
    big = max(results["fan_out"], key=lambda r: r["n"])
    bare, naive = results["bare"]["rate_median"], results["naive"]["rate_median"]
    ours = big["rate_median"]
    lat = results["latency"]
    hang = results["hanging"]["rate_median"] / results["healthy_baseline"]["rate_median"]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "BELOW"

    print()
    print(
        f"Fan-out benchmark, {results['started']}, {results['machine']['cpus']} CPUs, "
        f"subscriptions spread over {results['hosts']} receiving host(s)"
    )
    print(f"{'measure':<58}{'value':>12}  target")
    print("-" * 90)
    for r in results["fan_out"]:
        print(f"{'deliveries/s, N = ' + format(r['n'], ','):<58}{r['rate_median']:>12,.1f}")
    print(f"{'bare aiohttp loop, same payloads and sink':<58}{bare:>12,.1f}")
    print(f"{'naive: Celery task per delivery, requests.post':<58}{naive:>12,.1f}")
    print(
        f"{'N = 1,000 vs bare aiohttp':<58}{ours / bare:>12.2f}  >= {TARGET_VS_BARE:.2f}  "
        f"{verdict(ours / bare >= TARGET_VS_BARE)}"
    )
    print(
        f"{'N = 1,000 vs naive':<58}{ours / naive:>11.1f}x  >= {TARGET_VS_NAIVE:.0f}x  "
        f"{verdict(ours / naive >= TARGET_VS_NAIVE)}"
    )
    hop = results["naive"]["hop"]
    p50, p99 = lat["engine_p50_ms"] / hop["p50_ms"], lat["engine_p99_ms"] / hop["p99_ms"]
    full = f"{lat['p50_ms']:>6.1f} /{lat['p99_ms']:>5.1f}"
    print(f"{'publish request -> first delivery p50 / p99 (ms)':<58}{full}")
    print(f"{'  of which the publish request, p50 (ms)':<58}{lat['request_p50_ms']:>6.1f}")
    print(
        f"{'event recorded -> first delivery p50 / p99 (ms)':<58}"
        f"{lat['engine_p50_ms']:>6.1f} /{lat['engine_p99_ms']:>5.1f}"
    )
    print(f"{'one naive Celery hop p50 / p99 (ms)':<58}{hop['p50_ms']:>6.1f} /{hop['p99_ms']:>5.1f}")
    print(
        f"{'p50 vs one naive hop (event recorded -> first)':<58}{p50:>11.2f}x  <= {TARGET_P50_VS_HOP}x  "
        f"{verdict(p50 <= TARGET_P50_VS_HOP)}"
    )
    print(
        f"{'p99 vs one naive hop (event recorded -> first)':<58}{p99:>11.2f}x  <= {TARGET_P99_VS_HOP}x  "
        f"{verdict(p99 <= TARGET_P99_VS_HOP)}"
    )
    full50, full99 = lat["p50_ms"] / hop["p50_ms"], lat["p99_ms"] / hop["p99_ms"]
    print(f"{'  the same from before the publish request':<58}{full50:>11.2f}x / {full99:.2f}x")
    print(
        f"{'healthy rate with 10% hanging, vs all healthy':<58}{hang:>12.2f}  >= {TARGET_HANG_RATIO}  "
        f"{verdict(hang >= TARGET_HANG_RATIO)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument(
        "--rounds", type=int, default=6, help="publishes measured at N = 1,000 (twice that below)"
    )
    parser.add_argument("--latency", type=int, default=200, help="publishes for the latency figures")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument(
        "--hosts",
        type=int,
        default=50,
        help="receiving hosts (sink ports) the subscriptions are spread over (1: all on one host, "
        "where CMS_WEBHOOK_CONNECTIONS_PER_HOST bounds the fan-out)",
    )
    parser.add_argument("--pg-dsn", default=ADMIN_DSN)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="CMS_X=VALUE",
        help="passed to every process, e.g. CMS_WEBHOOK_CONNECTIONS_PER_HOST=64",
    )
    args = parser.parse_args(argv)
    results = run(args)
    report(results)
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"fanout-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(results, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
