"""Authoring API benchmark: creates/s, updates/s, reads/s against bare Flask.

One run does everything on this machine and prints a table (also written as
JSON to ``bench/results/``):

* a throwaway PostgreSQL database (migrated with ``cms db upgrade``, dropped at
  the end) and an admin key from ``cms create-api-key``;
* the bare-Flask ceiling (``bench/bare_app.py``) and then the CMS
  (``cms.wsgi:app``), each under the same gunicorn settings;
* a keep-alive asyncio HTTP/1.1 load driver in this process (or several, with
  ``--client-procs``), bounded concurrency, fixed duration per phase;
* when ``wrk`` is on PATH, the GET phases again with wrk as the load driver
  (``bench/wrk_paths.lua``; same connections and duration, 2 wrk threads): this C
  driver takes about half the CPU of the Python one, CPU the server competes for,
  so the read target is judged on those figures ("(wrk)" in the table);
* latest-version reads of an article with 1 version against one with
  ``--versions`` versions (built by sequential PATCHes over HTTP);
* the peak RSS of the gunicorn master and workers during the API phases;
* per phase, the CPU used by gunicorn, PostgreSQL, the driver and anything else
  (a phase disturbed by other processes is repeated, ``--retries``).

Usage: ``python bench/authoring.py [--seconds 8] [--concurrency 24] ...``;
``--seconds 2 --versions 200`` is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
ADMIN_DSN = os.environ.get("CMS_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

# Ratios to bare Flask under the same gunicorn settings, same driver (issue 11).
TARGET_CREATE_RATIO = 0.20  # creates against a bare JSON echo (POST /echo)
TARGET_READ_RATIO = 0.30  # GET /articles/{id} against bare GET /ping
TARGET_VERSION_RATIO = 0.20
TARGET_CONDITIONAL_RATIO = 0.5  # a 304 answer against bare Flask GET /ping, same driver
CONDITIONAL = "conditional GET /articles/{id} (304)"
NOISY_CORES = 0.15  # other processes using this much CPU during a phase make it a retry
STRAPI_NOTE = "Strapi 5 on the same machine: ~65 creates/s, ~240 reads/s"
WRK_SCRIPT = BENCH_DIR / "wrk_paths.lua"
WRK_THREADS = 2
WRK_SUFFIX = " (wrk)"  # marks the phases driven by wrk

# --------------------------------------------------------------------------- content

_SENTENCES = [
    "The cabinet approved the draft budget late on Tuesday after a session that lasted almost nine hours.",
    "Opposition leaders said they would challenge the spending plan in the constitutional court.",
    "According to the finance ministry, the deficit is expected to stay below three percent of GDP.",
    "Economists warned that the forecast relies on optimistic assumptions about energy prices.",
    "The measure still needs two readings in parliament before it can take effect in January.",
    "Trade unions have called a protest outside the ministry for Thursday morning.",
    "Several regional mayors welcomed the extra funding for schools and local hospitals.",
    "The central bank declined to comment on the figures ahead of its own quarterly report.",
    "Analysts at two international banks said the plan was broadly in line with expectations.",
    "The prime minister defended the package, calling it a budget for stability and growth.",
    "Officials said more details would be published on the government website next week.",
    "Critics argue that the reform postpones difficult decisions about the pension system.",
]
_HEADLINES = [
    "Cabinet approves budget after marathon session",
    "Opposition vows court challenge to spending plan",
    "Regional hospitals to receive extra funding",
    "Unions call protest over public sector wages",
    "Central bank holds rates as inflation eases",
    "Parliament opens debate on pension reform",
]
_TAGS = ["budget", "parliament", "economy", "politics", "health", "education", "pensions", "unions"]
_SECTIONS = ["politics", "economy", "world", "national"]


def _article_html(rng: random.Random) -> str:
    """A realistic 3-5 KB editor body: paragraphs, a subhead, a quote, a list, an image."""

    def para(n: int) -> str:
        return " ".join(rng.choice(_SENTENCES) for _ in range(n))

    parts = [f'<p class="lead"><strong>SOFIA</strong> &mdash; {para(3)}</p>']
    parts += [f"<p>{para(rng.randint(3, 4))}</p>" for _ in range(3)]
    parts.append("<h2>What happens next</h2>")
    parts.append(
        f'<p>{para(2)} <a href="https://example.org/budget-{rng.randint(1, 999)}">Read the draft</a>.</p>'
    )
    parts.append(f'<blockquote cite="https://example.org/q"><p>"{rng.choice(_SENTENCES)}"</p></blockquote>')
    parts.append("<ul>" + "".join(f"<li>{rng.choice(_SENTENCES)}</li>" for _ in range(3)) + "</ul>")
    parts.append(
        '<figure><img src="https://cdn.example.org/img/budget.jpg" alt="The parliament building" '
        'width="1200" height="800"><figcaption>The parliament building in Sofia.</figcaption></figure>'
    )
    parts += [f"<p>{para(rng.randint(3, 4))}</p>" for _ in range(3)]
    return "\n".join(parts)


def _bodies(count: int = 32, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [_article_html(rng) for _ in range(count)]


def article_payload(n: int, tag: str, bodies: list[str]) -> dict[str, Any]:
    """Fields for the ``n``-th new article; the headline (hence the slug) is unique."""
    return {
        "headline": f"{_HEADLINES[n % len(_HEADLINES)]} ({tag} {n})",
        "standfirst": _SENTENCES[n % len(_SENTENCES)],
        "body": bodies[n % len(bodies)],
        "byline": "Staff reporter",
        "tags": [_TAGS[n % len(_TAGS)], _TAGS[(n + 3) % len(_TAGS)]],
        "section": _SECTIONS[n % len(_SECTIONS)],
        "language": "en",
    }


# --------------------------------------------------------------------------- HTTP client


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One HTTP/1.1 keep-alive connection to ``HOST:port``; reopened when the server closes it.

    With ``max_requests`` it is also closed after that many requests, as some clients and
    proxies do. (A gthread worker serves every request of the connections it accepted, so
    connections opened at once are shared unevenly between workers; see bench/README.md.)
    """

    def __init__(self, port: int, key: str | None, max_requests: int = 0) -> None:
        self.port = port
        self.max_requests = max_requests
        self.served = 0
        self.prefix = f"Host: {HOST}:{port}\r\n" + (f"Authorization: Bearer {key}\r\n" if key else "")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.opened = 0

    async def request(self, method: str, path: str, body: bytes | None = None, headers: str = "") -> Reply:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            self.opened += 1
            self.served = 0
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\n{self.prefix}{headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            if status in (204, 304) or method == "HEAD":
                data = b""  # no body, whatever the headers say
            elif "content-length" in fields:
                data = await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                data = await self._chunked()
            else:
                data = await self.reader.read()
                fields["connection"] = "close"
        except BaseException:
            self.close()
            raise
        self.served += 1
        if (
            fields.get("connection", "").lower() == "close"
            or lines[0].startswith("HTTP/1.0")
            or self.served == self.max_requests
        ):
            self.close()
        return Reply(status, fields, data)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        out = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return bytes(out)
            out += await self.reader.readexactly(size + 2)
            del out[-2:]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def etag_version(reply: Reply) -> int:
    """``ETag: "v7.<last change>"`` (or ``"v7"``) -> 7."""
    return int(reply.headers["etag"].strip('"').removeprefix("v").split(".", 1)[0])


# --------------------------------------------------------------------------- load phases


@dataclass(frozen=True)
class PhaseSpec:
    """What one load-driver process runs (picklable, so it can go to a worker process)."""

    kind: str  # ping | echo | create | update | read | grow
    port: int
    key: str
    seconds: float
    concurrency: int
    ids: tuple[str, ...] = ()
    versions: tuple[int, ...] = ()  # latest version of each of ``ids`` (update, grow); default 1
    limit: int = 0  # stop after this many requests (0: only the duration bounds the phase)
    tag: str = "a"  # makes create headlines unique across processes and phases
    start_at: float = 0.0  # wall-clock time to start at, so driver processes start together
    conn_requests: int = 0  # requests per connection before the client reconnects (0: unlimited)
    driver: str = "python"  # python | wrk (ping and read only)


@dataclass
class PhaseResult:
    name: str
    kind: str = ""
    driver: str = "python"
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    connections: int = 0
    attempts: int = 1  # > 1: earlier attempts were disturbed by other processes and discarded
    latencies: list[float] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of the server and PostgreSQL
    versions: dict[str, int] = field(default_factory=dict)  # latest version of articles it updated

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def merge(self, other: PhaseResult) -> None:
        self.ok += other.ok
        self.errors = dict(Counter(self.errors) + Counter(other.errors))
        self.elapsed = max(self.elapsed, other.elapsed)
        self.client_cpu += other.client_cpu
        self.connections += other.connections
        self.latencies += other.latencies
        self.created += other.created
        self.versions |= other.versions

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None

        return {
            "requests_per_s": round(self.rps, 1),
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.elapsed, 2),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else None,
            "driver": self.driver,
            "connections_opened": self.connections if self.driver == "python" else None,
            "attempts": self.attempts,
            "cpu_cores": {
                k: round(v / self.elapsed, 2) if self.elapsed else None
                for k, v in {**self.cpu, "driver": self.client_cpu}.items()
            },
        }

    def add(self, part: PhaseResult) -> None:
        """Accumulate a consecutive slice of the same measurement."""
        self.ok, self.latencies = self.ok + part.ok, self.latencies + part.latencies
        self.errors = dict(Counter(self.errors) + Counter(part.errors))
        self.elapsed, self.client_cpu = self.elapsed + part.elapsed, self.client_cpu + part.client_cpu
        self.connections += part.connections
        self.cpu = dict(Counter(self.cpu) + Counter(part.cpu))
        self.attempts = max(self.attempts, part.attempts)


Step = Callable[[Connection], Awaitable[int]]


def _steps(spec: PhaseSpec, created: list[str], final: dict[str, int]) -> Iterator[Step]:
    """One step function per concurrent worker; each returns the HTTP status it got."""
    bodies = _bodies()
    counter = iter(range(10**9))
    echo_body = json.dumps(article_payload(0, "echo", bodies)).encode()
    # Updaters own disjoint articles (no 412s); each tracks its articles' latest versions.
    known = dict(zip(spec.ids, spec.versions, strict=False))
    owned = [spec.ids[w :: spec.concurrency] for w in range(spec.concurrency)]
    rng = random.Random()

    for w in range(spec.concurrency):
        if spec.kind == "ping":

            async def ping(conn: Connection) -> int:
                return (await conn.request("GET", "/ping")).status

            yield ping
        elif spec.kind == "echo":

            async def echo(conn: Connection) -> int:
                return (await conn.request("POST", "/echo", echo_body)).status

            yield echo
        elif spec.kind == "create":

            async def create(conn: Connection) -> int:
                payload = article_payload(next(counter), spec.tag, bodies)
                r = await conn.request("POST", "/api/v1/articles", json.dumps(payload).encode())
                if r.status == 201:
                    created.append(r.headers["location"].rsplit("/", 1)[1])
                return r.status

            yield create
        elif spec.kind in ("update", "grow"):
            if not owned[w]:
                continue  # fewer articles than concurrent updaters
            versions = {aid: known.get(aid, 1) for aid in owned[w]}

            async def update(conn: Connection, versions: dict[str, int] = versions) -> int:
                aid, n = next(iter(versions.items()))
                path = f"/api/v1/articles/{aid}"
                body = json.dumps({"headline": f"{_HEADLINES[n % len(_HEADLINES)]} (rev {n + 1})"})
                r = await conn.request("PATCH", path, body.encode(), f'If-Match: "v{n}"\r\n')
                if r.status == 412:  # someone else saved: re-read the ETag, retry on its next turn
                    r412 = r
                    r = await conn.request("GET", path)
                    n = etag_version(r) if r.status == 200 else n
                    r = r412
                elif r.status == 200:
                    n = etag_version(r)
                del versions[aid]
                versions[aid] = final[aid] = n  # round-robin: to the back of the queue
                return r.status

            yield update
        elif spec.kind == "read":

            async def read(conn: Connection) -> int:
                r = await conn.request("GET", f"/api/v1/articles/{rng.choice(spec.ids)}")
                return r.status

            yield read
        elif spec.kind == "conditional":
            etags: dict[str, str] = {}  # this worker's copy of each article, as a cache holds one

            async def conditional(conn: Connection, etags: dict[str, str] = etags) -> int:
                aid = rng.choice(spec.ids)
                known = f"If-None-Match: {etags[aid]}\r\n" if aid in etags else ""
                r = await conn.request("GET", f"/api/v1/articles/{aid}", None, known)
                if r.status == 200:
                    etags[aid] = r.headers["etag"]
                return 200 if r.status == 304 else r.status

            yield conditional
        else:
            raise ValueError(spec.kind)


async def _drive(spec: PhaseSpec) -> PhaseResult:
    if spec.start_at:
        await asyncio.sleep(max(0.0, spec.start_at - time.time()))
    result = PhaseResult(spec.kind, spec.kind)
    errors: Counter[str] = Counter()
    budget = [spec.limit or -1]
    deadline = time.perf_counter() + spec.seconds

    async def worker(step: Step) -> None:
        conn = Connection(spec.port, spec.key, spec.conn_requests)
        while time.perf_counter() < deadline and budget[0] != 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            try:
                status = await step(conn)
            except (OSError, EOFError, ValueError, KeyError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] += 1
                conn.close()
                continue
            if 200 <= status < 300:
                result.ok += 1
                result.latencies.append(time.perf_counter() - t0)
            else:
                errors[str(status)] += 1
        conn.close()
        result.connections += conn.opened

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(s) for s in _steps(spec, result.created, result.versions)))
    result.elapsed = time.perf_counter() - t0
    result.client_cpu = time.process_time() - cpu0
    result.errors = dict(errors)
    return result


def run_spec(spec: PhaseSpec) -> PhaseResult:
    """Entry point of a load-driver process (or of this one with ``--client-procs 1``)."""
    return asyncio.run(_drive(spec))


class Driver:
    """Runs phases in ``procs`` driver processes, splitting concurrency and article ids."""

    def __init__(self, procs: int, conn_requests: int) -> None:
        self.procs, self.conn_requests = procs, conn_requests
        self.pool: ProcessPoolExecutor | None = None
        if procs > 1:
            import multiprocessing

            self.pool = ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn"))
            list(self.pool.map(time.sleep, [0.0] * procs))  # spawn them now, not inside a phase

    def run(self, name: str, spec: PhaseSpec) -> PhaseResult:
        spec = replace(spec, conn_requests=self.conn_requests)
        procs = min(self.procs, spec.concurrency)
        if self.pool is None or procs == 1:
            result = run_spec(spec)
        else:
            start = time.time() + 0.2
            shares = [spec.concurrency // procs + (i < spec.concurrency % procs) for i in range(procs)]
            specs = [
                replace(
                    spec,
                    concurrency=shares[i],
                    ids=spec.ids if spec.kind == "read" else spec.ids[i::procs],
                    versions=spec.versions[i::procs],
                    limit=-(-spec.limit // procs) if spec.limit else 0,
                    tag=f"{spec.tag}{i}",
                    start_at=start,
                )
                for i in range(procs)
            ]
            result = PhaseResult(name, spec.kind)
            for part in self.pool.map(run_spec, specs):
                result.merge(part)
        result.name = name
        return result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def latencies_from_percentiles(points: list[list[float]], count: int) -> list[float]:
    """``count`` latencies (s) distributed like wrk's ``[[percentile, µs], ...]`` (linear in between).

    wrk reports percentiles, not samples; this stands in for the samples so that wrk
    phases are summarised (and the A-B-B-A halves pooled) like the Python-driver ones.
    """
    out: list[float] = []
    j = 0
    for i in range(count if len(points) > 1 else 0):
        q = 100 * (i + 0.5) / count
        while j < len(points) - 2 and points[j + 1][0] < q:
            j += 1
        (p0, v0), (p1, v1) = points[j], points[j + 1]
        out.append((v0 + (v1 - v0) * (q - p0) / (p1 - p0) if p1 > p0 else v1) / 1e6)
    return out


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).split("\n", 1)[0].split(" [", 1)[0].strip()


def run_wrk(wrk: str, spec: PhaseSpec, work_dir: Path) -> PhaseResult:
    """One GET phase driven by wrk: ``ping`` -> ``/ping``, ``read`` -> a random one of ``spec.ids``.

    wrk's CPU (and this process's, which only waits) is the driver's; wrk runs whole
    seconds. Non-2xx responses (counted by the Lua script per status) and wrk's socket
    errors are errors; everything else is ``ok``.
    """
    paths = ["/ping"] if spec.kind == "ping" else [f"/api/v1/articles/{aid}" for aid in spec.ids]
    paths_file = work_dir / "wrk-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    threads = WRK_THREADS if spec.concurrency % WRK_THREADS == 0 else 1
    seconds = max(1, round(spec.seconds))
    command = [
        wrk, "-t", str(threads), "-c", str(spec.concurrency), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(WRK_SCRIPT),
    ]  # fmt: skip
    if spec.key:
        command += ["-H", f"Authorization: Bearer {spec.key}"]
    command += [f"http://{HOST}:{spec.port}", "--", str(paths_file)]
    own0, kids0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
    with (work_dir / "wrk.log").open("a") as log:
        shown = [a.replace(spec.key, "<key>") if spec.key else a for a in command]
        log.write(f"$ {' '.join(shown)}\n{done.stdout}{done.stderr}\n")
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode or line is None:
        raise RuntimeError(
            f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    data = json.loads(line.removeprefix("WRK_JSON "))
    result = PhaseResult(spec.kind, spec.kind, driver="wrk")
    result.ok = data["requests"] - sum(data["statuses"].values())
    # "status" is wrk's own count of statuses >= 400, already in "statuses" (all non-2xx).
    result.errors = data["statuses"] | {k: v for k, v in data["errors"].items() if v and k != "status"}
    result.elapsed = data["duration_us"] / 1e6
    result.client_cpu = wrk_cpu + time.process_time() - own0
    result.latencies = latencies_from_percentiles(data["latency_us"], result.ok)
    return result


# --------------------------------------------------------------------------- servers and memory


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes() -> Iterator[tuple[int, int, str, int]]:
    """``(pid, ppid, command name, CPU ticks used)`` of every process."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            rest = stat.rsplit(")", 1)[1].split()
            yield int(entry), int(rest[1]), comm, int(rest[11]) + int(rest[12])


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (gunicorn workers of a master)."""
    return [p for p, ppid, _, _ in processes() if ppid == pid]


def machine_busy_ticks() -> int:
    """Non-idle CPU ticks of the whole machine, all cores (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]  # minus idle and iowait; guest is inside user


def pg_database(pid: int) -> str | None:
    """The database a PostgreSQL backend or autovacuum worker works on, from its process title
    (``postgres: 15/main: user db 127.0.0.1(5432) idle``); None for the shared background processes."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    words = title.split()
    if "autovacuum worker" in title:
        return words[-1]
    for i, word in enumerate(words[2:], 2):
        if word == "[local]" or (word.endswith(")") and "(" in word):
            return words[i - 1]
    return None


def cpu_ticks(master: int, database: str) -> dict[str, dict[int, int]]:
    """CPU ticks per process of the gunicorn master + workers and of the PostgreSQL processes
    (background ones and those of ``database``: other databases' backends are other load),
    and of the whole machine (``machine``, pid 0)."""
    groups: dict[str, dict[int, int]] = {"server": {}, "postgres": {}, "machine": {0: machine_busy_ticks()}}
    for pid, ppid, comm, ticks in processes():
        if master in (pid, ppid):
            groups["server"][pid] = ticks
        elif comm == "postgres" and pg_database(pid) in (None, database):
            groups["postgres"][pid] = ticks
    return groups


def proc_kib(pid: int, field_name: str, file: str = "status") -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (VmRSS, VmHWM) or ``smaps_rollup`` (Pss); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Gunicorn:
    """A gunicorn master on a free 127.0.0.1 port, logging to a temp file."""

    def __init__(self, app: str, args: argparse.Namespace, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.args = args
        self.log = log_dir / f"gunicorn-{app.split(':')[0]}.log"
        self.command = [
            str(BIN / "gunicorn"), app,
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(args.workers),
            "--worker-class", args.worker_class,
            "--log-level", "warning",
            "--worker-tmp-dir", "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir(),
            "--pythonpath", str(BENCH_DIR),
        ]  # fmt: skip
        if args.worker_class == "gthread":
            self.command += ["--threads", str(args.threads)]
        if args.preload:
            self.command.append("--preload")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
            )

    @property
    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        """Until all workers are forked and one answers ``path`` (any HTTP status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log}")
            if len(self.pids) > self.args.workers:
                try:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                    conn.request("GET", path)
                    conn.getresponse().read()
                    conn.close()
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f}s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class RssSampler(threading.Thread):
    """Samples the summed VmRSS of a gunicorn master and its workers; keeps the peak."""

    def __init__(self, server: Gunicorn, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.peak_kib = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            pids = self.server.pids
            self.peak_kib = max(self.peak_kib, sum(proc_kib(p, "VmRSS") for p in pids))
            self.samples += 1

    def stop(self) -> dict[str, Any]:
        self.done.set()
        self.join()
        pids = self.server.pids
        hwm = {p: proc_kib(p, "VmHWM") for p in pids}
        return {
            "peak_rss_sum_mib": round(self.peak_kib / 1024, 1),
            "vmhwm_sum_mib": round(sum(hwm.values()) / 1024, 1),
            # Proportional set size: shared pages counted once overall (RSS sums count them per process).
            "pss_sum_at_end_mib": round(sum(proc_kib(p, "Pss", "smaps_rollup") for p in pids) / 1024, 1),
            "vmhwm_per_process_mib": [round(v / 1024, 1) for v in hwm.values()],
            "samples": self.samples,
            "interval_s": self.interval,
        }


# --------------------------------------------------------------------------- database


def admin_execute(dsn: str, statement: sql.Composable) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


def database_url(dsn: str, name: str) -> str:
    return f"{dsn.rsplit('/', 1)[0]}/{name}"


def pg_settings(url: str) -> dict[str, str]:
    names = ("server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections")
    with psycopg.connect(url) as conn:
        rows = [conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(n))).fetchone() for n in names]
    return {n: str(row[0]) if row else "" for n, row in zip(names, rows, strict=True)}


def common_options(p: argparse.ArgumentParser, workers: int) -> None:
    """The gunicorn settings and bookkeeping options the newer benchmarks share."""
    p.add_argument("--workers", type=int, default=workers)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    p.add_argument("--pg-dsn", default=ADMIN_DSN)
    p.add_argument("--no-save", action="store_true")
    p.add_argument("--keep-db", action="store_true")


def save_result(kind: str, result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    saved = RESULTS_DIR / f"{kind}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    saved.write_text(json.dumps(result, indent=2, default=str))
    print(f"saved {saved}")
    return saved


def cms(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "cms"), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"cms {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# --------------------------------------------------------------------------- the run


def ratio(value: float, ceiling: float) -> float | None:
    return round(value / ceiling, 3) if ceiling else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds, conc = args.seconds, args.concurrency
    warm = min(1.0, seconds / 4)
    db_name = f"cms_bench_{secrets.token_hex(4)}"
    url = database_url(args.pg_dsn, db_name)
    env = {**os.environ, "CMS_DATABASE_URL": url, "CMS_SECRET_KEY": secrets.token_urlsafe(32)}
    env.pop("CMS_SQL_ECHO", None)
    log_dir = Path(tempfile.mkdtemp(prefix="cms-bench-"))
    servers: list[Gunicorn] = []
    driver = Driver(args.client_procs, args.conn_requests)
    wrk = None if args.no_wrk else shutil.which("wrk")
    phases: dict[str, PhaseResult] = {}
    out: dict[str, Any] = {}

    def drive(name: str, spec: PhaseSpec) -> PhaseResult:
        """``driver.run``, keeping track of the articles created and their latest versions."""
        if spec.driver == "wrk":
            assert wrk is not None
            result = run_wrk(wrk, spec, log_dir)
            result.name = name
            return result
        if spec.kind in ("update", "grow"):
            spec = replace(spec, versions=tuple(known.get(aid, 1) for aid in spec.ids))
        result = driver.run(name, spec)
        created.extend(result.created)
        known.update(result.versions)
        return result

    def measure(name: str, spec: PhaseSpec, server: Gunicorn) -> PhaseResult:
        """Run ``spec``, recording the CPU the server and PostgreSQL used meanwhile.

        Repeated (up to ``--retries`` times, after waiting for an idle machine) when other
        processes used ``NOISY_CORES`` or more meanwhile: they compete for the same cores.
        """
        for attempt in range(1, args.retries + 2):
            before = cpu_ticks(server.proc.pid, db_name)
            result = drive(name, spec)
            after = cpu_ticks(server.proc.pid, db_name)
            cpu = {
                group: sum(t - before[group].get(pid, 0) for pid, t in ticks.items()) / CLOCK_TICKS
                for group, ticks in after.items()
            }
            machine = cpu.pop("machine")
            cpu["other"] = max(0.0, machine - cpu["server"] - cpu["postgres"] - result.client_cpu)
            result.cpu, result.attempts = cpu, attempt
            other = cpu["other"] / result.elapsed
            if other < NOISY_CORES or attempt > args.retries:
                break
            print(f"  ({name or spec.kind}: other processes used {other:.2f} cores; again when idle)")
            background_load(max(args.wait_idle, 120))
        return result

    def report(result: PhaseResult) -> None:
        s = result.summary()
        cores = " ".join(f"{k} {v}" for k, v in s["cpu_cores"].items())
        print(
            f"  {result.name:<34} {s['requests_per_s']:>8.1f} req/s  p50 {s['p50_ms']} ms"
            f"  errors {s['errors']}  CPU cores: {cores}"
        )
        phases[result.name] = result

    def phase(name: str, spec: PhaseSpec, server: Gunicorn) -> PhaseResult:
        """A warm-up (not reported), then the measured phase."""
        if warm:
            drive(name, replace(spec, seconds=warm, tag=spec.tag + "w"))
        result = measure(name, spec, server)
        report(result)
        return result

    created: list[str] = []  # every article created, in order
    known: dict[str, int] = {}  # latest version of every article updated
    admin_execute(args.pg_dsn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))
    try:
        print(f"database {db_name}; gunicorn logs in {log_dir}")
        cms(env, "db", "upgrade")
        key = cms(env, "create-api-key", "--role", "admin", "--name", "bench").strip().splitlines()[-1]
        out["postgres"] = pg_settings(url)

        print("bare Flask (bench/bare_app.py):")
        bare = Gunicorn("bare_app:app", args, env, log_dir)
        servers.append(bare)
        bare.wait_ready("/ping")
        phase("bare GET /ping", PhaseSpec("ping", bare.port, "", seconds, conc), bare)
        phase("bare POST /echo", PhaseSpec("echo", bare.port, "", seconds, conc), bare)
        if wrk:
            spec = PhaseSpec("ping", bare.port, "", seconds, conc, driver="wrk")
            phase("bare GET /ping" + WRK_SUFFIX, spec, bare)
        bare.stop()

        print("CMS (cms.wsgi:app):")
        api = Gunicorn("cms.wsgi:app", args, env, log_dir)
        servers.append(api)
        api.wait_ready("/api/v1/openapi.json")
        sampler = RssSampler(api)
        sampler.start()
        phase("create POST /articles", PhaseSpec("create", api.port, key, seconds, conc, tag="c"), api)
        ids = tuple(created)
        if not ids:
            raise RuntimeError(f"no article was created; see {api.log}")
        out["articles"] = len(ids)  # the articles the update and read phases spread over
        phase("update PATCH /articles/{id}", PhaseSpec("update", api.port, key, seconds, conc, ids), api)
        phase("read GET /articles/{id}", PhaseSpec("read", api.port, key, seconds, conc, ids), api)
        # A partner's cache revalidating: If-None-Match with the ETag it holds, answered 304.
        phase(CONDITIONAL, PhaseSpec("conditional", api.port, key, seconds, conc, tuple(ids[:200])), api)
        if wrk:
            spec = PhaseSpec("read", api.port, key, seconds, conc, ids, driver="wrk")
            phase("read GET /articles/{id}" + WRK_SUFFIX, spec, api)

        if args.versions > 1:
            print(f"versions: building an article with {args.versions} versions (sequential PATCH)")
            one = drive("one", PhaseSpec("create", api.port, key, 60, 1, limit=2, tag="v1"))
            single, many = one.created
            t0 = time.perf_counter()
            grow = drive(
                "grow",
                PhaseSpec("grow", api.port, key, 3600, 1, (many,), limit=args.versions - 1),
            )
            build_s = time.perf_counter() - t0
            print(f"  built in {build_s:.1f}s ({grow.rps:.0f} PATCH/s, errors {grow.errors})")
            with psycopg.connect(url) as conn:
                counts = dict(
                    conn.execute(  # type: ignore[arg-type]
                        "SELECT article_id::text, count(*) FROM article_versions"
                        " WHERE article_id = ANY(%s::uuid[]) GROUP BY 1",
                        ([single, many],),
                    ).fetchall()
                )

            def latest_reads(how: str) -> float | None:
                """Reads of each article in A B B A halves, so drift (autovacuum, caches) hits both alike."""
                suffix = WRK_SUFFIX if how == "wrk" else ""
                reads = {
                    single: PhaseResult("read latest, 1 version" + suffix, "read", how),
                    many: PhaseResult(f"read latest, {args.versions} versions" + suffix, "read", how),
                }
                drive("warm", PhaseSpec("read", api.port, key, warm, conc, (single, many), driver=how))
                for aid in (single, many, many, single):
                    spec = PhaseSpec("read", api.port, key, seconds / 2, conc, (aid,), driver=how)
                    reads[aid].add(measure("", spec, api))
                for r in reads.values():
                    report(r)
                return ratio(reads[many].rps, reads[single].rps)

            ratios = {"python": latest_reads("python")}
            if wrk:
                ratios["wrk"] = latest_reads("wrk")
            out["versions"] = {
                "versions": args.versions,
                "rows_in_db": {"1 version": counts.get(single), "many": counts.get(many)},
                "build_seconds": round(build_s, 1),
                "build_patch_per_s": round(grow.rps, 1),
                "build_errors": grow.errors,
                # The one judged against the target: wrk's when there is one.
                "read_ratio_many_to_one": ratios.get("wrk", ratios["python"]),
                "read_ratio_by_driver": ratios,
            }
        out["memory"] = sampler.stop()
        out["memory"]["workers"] = len(api.pids) - 1
        api.stop()
    finally:
        for s in servers:
            s.stop()
        driver.close()
        if args.keep_db:
            print(f"kept database {db_name}: {url}")
        else:
            admin_execute(
                args.pg_dsn,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name)),
            )

    out["phases"] = {}
    for name, r in phases.items():
        s = r.summary()
        # Writes against the JSON-parsing POST ceiling, reads against the GET one (same driver).
        ceiling = "bare POST /echo" if r.kind in ("create", "update", "echo") else "bare GET /ping"
        s["bare_ceiling"] = ceiling + (WRK_SUFFIX if r.driver == "wrk" else "")
        s["ratio_to_bare"] = ratio(r.rps, phases[s["bare_ceiling"]].rps)
        out["phases"][name] = s
    out["read_target_driver"] = "wrk" if wrk else "python"
    return out


def print_table(results: dict[str, Any]) -> None:
    """The results as a fixed-width table, with the targets beside the figures."""
    ph = results["phases"]
    read = "read GET /articles/{id}"
    judged = read + WRK_SUFFIX if results["read_target_driver"] == "wrk" else read
    targets: dict[str, float] = {}
    ratio_targets = {
        "create POST /articles": TARGET_CREATE_RATIO,
        judged: TARGET_READ_RATIO,
        CONDITIONAL: TARGET_CONDITIONAL_RATIO,
    }
    cfg = results["config"]
    print()
    print(
        f"Authoring benchmark, {results['date']}, {cfg['cpus']} CPUs, gunicorn {cfg['worker_class']} "
        f"x{cfg['workers']}"
        + (f" ({cfg['threads']} threads)" if cfg["worker_class"] == "gthread" else "")
        + f", concurrency {cfg['concurrency']}, {cfg['seconds']:g}s per phase"
    )
    header = (
        f"{'phase':<34}{'req/s':>9}{'vs bare':>9}{'p50 ms':>8}{'p99 ms':>8}  {'errors':<12}"
        f"{'CPU cores srv/pg/drv/other':<28}target"
    )
    print(header)
    print("-" * len(header))
    for name, s in ph.items():
        target = ""
        if name in targets:
            mark = "ok" if s["requests_per_s"] >= targets[name] else "BELOW"
            target = f">= {targets[name]:,.0f}/s  {mark}"
        elif name in ratio_targets and s["ratio_to_bare"] is not None:
            mark = "ok" if s["ratio_to_bare"] >= ratio_targets[name] else "BELOW"
            target = f">= {ratio_targets[name]:.0%} of bare  {mark}"
        errors = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "-"
        vs = f"{s['ratio_to_bare'] * 100:.0f}%" if s["ratio_to_bare"] is not None else "-"
        c = s["cpu_cores"]
        cores = "/".join(f"{c.get(k) or 0:.2f}" for k in ("server", "postgres", "driver", "other"))
        print(
            f"{name:<34}{s['requests_per_s']:>9.1f}{vs:>9}{s['p50_ms'] or 0:>8.2f}"
            f"{s['p99_ms'] or 0:>8.2f}  {errors:<12}{cores:<28}{target}"
        )
    print(
        f"Updates cycle through, and reads pick at random from, the {results['articles']:,} articles created."
    )
    drv = {name: s["cpu_cores"].get("driver") or 0 for name, s in ph.items()}
    if judged != read:
        print(
            f"Reads are judged on the wrk line (C load driver: {drv[judged]:.2f} cores, against "
            f"{drv[read]:.2f} for the Python driver, on the same {cfg['cpus']} cores as the server)."
        )
    else:
        print(
            f"wrk not found: reads are judged on the Python driver, which itself took {drv[read]:.2f} "
            f"of the {cfg['cpus']} cores (apt-get install wrk for the C driver)."
        )
    if "versions" in results:
        v = results["versions"]
        r = v["read_ratio_many_to_one"]
        mark = "ok" if r is not None and abs(1 - r) <= TARGET_VERSION_RATIO else "OUTSIDE"
        by = v["read_ratio_by_driver"]
        also = f"; Python driver {by['python']:.3f}" if "wrk" in by else ""
        print(
            f"latest-version read, {v['versions']} vs 1 versions: ratio {r:.3f} "
            f"({results['read_target_driver']}{also}; target within {TARGET_VERSION_RATIO:.0%}: {mark})"
        )
        print(
            f"  built {v['rows_in_db']['many']} versions in {v['build_seconds']}s "
            f"({v['build_patch_per_s']} PATCH/s at concurrency 1)"
        )
    m = results["memory"]
    print(
        f"gunicorn memory (master + {m['workers']} workers) during API phases: "
        f"peak sampled RSS sum {m['peak_rss_sum_mib']} MiB, VmHWM sum {m['vmhwm_sum_mib']} MiB "
        f"(PSS sum at the end {m['pss_sum_at_end_mib']} MiB)"
    )
    print(f"Targets: creates >= {TARGET_CREATE_RATIO:.0%} of bare POST /echo, reads >= "
          f"{TARGET_READ_RATIO:.0%} of bare GET /ping, "
          f"latest-version read within {TARGET_VERSION_RATIO:.0%} (1 vs many versions).")  # fmt: skip
    print(STRAPI_NOTE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="duration of each measured phase")
    p.add_argument("--concurrency", type=int, default=24, help="requests in flight")
    # Defaults from sweeps on a 2-core machine (bench/README.md), the last one with both drivers:
    # sync x4 is the setting that repeats. gthread 4x2 keeps connections alive and was 3-8% faster
    # on average, with 2-5x the p99; in some runs most connections landed on one worker (one GIL)
    # and a phase fell by up to 40%.
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    p.add_argument(
        "--worker-class", default="sync", choices=["sync", "gthread"], help="gunicorn worker class"
    )
    p.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    p.add_argument("--preload", action="store_true", help="gunicorn --preload (app loaded in the master)")
    p.add_argument("--versions", type=int, default=5000, help="versions of the long-history article")
    p.add_argument(
        "--conn-requests", type=int, default=0, help="requests per client connection (0: unlimited)"
    )
    p.add_argument("--client-procs", type=int, default=1, help="load-driver processes")
    p.add_argument("--no-wrk", action="store_true", help="do not use wrk even if it is on PATH")
    p.add_argument("--pg-dsn", default=ADMIN_DSN, help="admin DSN (URL form) used to create the database")
    p.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    p.add_argument("--retries", type=int, default=2, help="repeats of a phase disturbed by other load")
    p.add_argument("--wait-idle", type=float, default=0.0, help="wait up to this many s for an idle machine")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    p.add_argument("--no-embedded", action="store_true", help="skip the embedded-mode (cms up) phase")
    return p.parse_args(argv)


def background_load(wait: float) -> float:
    """CPU cores busy on the machine before the run; waits up to ``wait`` s for it to drop below 0.2."""
    deadline = time.monotonic() + wait
    while True:
        t0, b0 = time.monotonic(), machine_busy_ticks()
        time.sleep(1.0)
        cores = (machine_busy_ticks() - b0) / CLOCK_TICKS / (time.monotonic() - t0)
        if cores < 0.2 or time.monotonic() >= deadline:
            return round(cores, 2)


def git_revision() -> str:
    """The commit measured, ``+dirty`` when the working tree has changes to tracked files."""

    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def git_dirty_files() -> list[str]:
    """Tracked files with uncommitted changes (what ``+dirty`` in the revision stands for)."""
    command = ["git", "status", "--porcelain", "--untracked-files=no"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so the servers stop and the database is dropped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    started = datetime.now(UTC)
    wrk = None if args.no_wrk else shutil.which("wrk")
    results: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "config": {
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "worker_class": args.worker_class,
            "threads": args.threads if args.worker_class == "gthread" else None,
            "preload": args.preload,
            "client_procs": args.client_procs,
            "conn_requests": args.conn_requests,
            "versions": args.versions,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "revision": git_revision(),
            "dirty_files": git_dirty_files(),
            "wrk": wrk_version(wrk) if wrk else None,
            "wrk_threads": WRK_THREADS,
        },
    }
    load = background_load(args.wait_idle)
    results["config"]["background_load_cores"] = load
    if load >= 0.2:
        print(
            f"warning: other processes keep {load} CPU cores busy; "
            "the figures will be lower than on an idle machine"
        )
    results |= run(args)
    if not args.no_embedded:
        from embedded import run as run_embedded

        print("\nEmbedded mode (cms up: SQLite, gunicorn gthread), mixed load:")
        results["embedded"] = run_embedded(args.seconds)
    results["targets"] = {
        "creates_vs_bare_echo": TARGET_CREATE_RATIO,
        "reads_vs_bare_get": TARGET_READ_RATIO,
        "version_read_within": TARGET_VERSION_RATIO,
        "context": STRAPI_NOTE,
    }
    print_table(results)
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"authoring-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (servers stopped, benchmark database dropped)", file=sys.stderr)
        sys.exit(130)
