"""The embedded mode under a mixed load: ``cms up`` (SQLite, gunicorn gthread, the
embedded broker) at 8 and 32 clients, reads and writes timed apart.

Part of ``bench/authoring.py`` (``--no-embedded`` skips it); also runs alone:
``python bench/embedded.py [--seconds 8]``. Each client loops: 70% ``GET`` of a
random article, 15% ``POST /articles``, 15% ``PATCH`` of an article it owns (so
no 412s). What matters here is that reads do not queue behind writes (WAL readers
never wait), so a read's p99 stays close to its p50 while writes go on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from authoring import BIN, HOST, Connection, free_port  # noqa: E402

CLIENTS = (8, 32)
ARTICLES = 200


def pct(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else None


async def _mixed(
    port: int, key: str, versions: dict[str, int], seconds: float, clients: int
) -> dict[str, Any]:
    """``versions``: each article's latest version, kept up to date across runs."""
    ids = list(versions)
    reads: list[float] = []
    writes: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def client(w: int) -> None:
        rng = random.Random(w)
        mine = ids[w::clients]
        conn = Connection(port, key)
        n = 0
        while time.perf_counter() < deadline:
            roll, t0 = rng.random(), time.perf_counter()
            try:
                if roll < 0.70 or not mine:
                    r = await conn.request("GET", f"/api/v1/articles/{rng.choice(ids)}")
                    bucket, ok = reads, r.status == 200
                elif roll < 0.85:
                    n += 1
                    body = json.dumps({"headline": f"Embedded {w}-{n}", "body": "<p>Text.</p>"}).encode()
                    r = await conn.request("POST", "/api/v1/articles", body)
                    bucket, ok = writes, r.status == 201
                else:
                    aid = rng.choice(mine)
                    body = json.dumps({"headline": f"Revised {w}-{n}-{time.time()}"}).encode()
                    r = await conn.request(
                        "PATCH", f"/api/v1/articles/{aid}", body, f'If-Match: "v{versions[aid]}"\r\n'
                    )
                    if r.status == 200:
                        versions[aid] += 1
                    bucket, ok = writes, r.status == 200
            except (OSError, EOFError, ValueError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn.close()
                continue
            if ok:
                bucket.append(time.perf_counter() - t0)
            else:
                errors[str(r.status)] = errors.get(str(r.status), 0) + 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(w) for w in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "reads_per_s": round(len(reads) / elapsed, 1),
        "writes_per_s": round(len(writes) / elapsed, 1),
        "read_p50_ms": pct(reads, 0.50),
        "read_p99_ms": pct(reads, 0.99),
        "write_p50_ms": pct(writes, 0.50),
        "write_p99_ms": pct(writes, 0.99),
        "errors": errors,
    }


def run(seconds: float) -> list[dict[str, Any]]:
    """Start ``cms up`` in a fresh directory, create the articles, run each client count."""
    work = Path(tempfile.mkdtemp(prefix="cms-embedded-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update({"CMS_VAR_DIR": str(work / "var"), "CMS_PORT": str(port), "PYTHONUNBUFFERED": "1"})
    log = work / "up.log"
    proc = subprocess.Popen(
        [str(BIN / "cms"), "up"], cwd=work, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (match := re.search(r"^\s+(cms_\S+)\s*$", log.read_text(errors="replace"), re.M)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cms up did not start; see {log}")
            time.sleep(0.2)
        key = match.group(1)
        versions = dict.fromkeys(asyncio.run(_create(port, key, ARTICLES)), 1)
        results = []
        for clients in CLIENTS:
            result = asyncio.run(_mixed(port, key, versions, seconds, clients))
            results.append(result)
            print(
                f"  embedded, {clients:>2} clients: reads {result['reads_per_s']}/s"
                f" p50 {result['read_p50_ms']} ms p99 {result['read_p99_ms']} ms;"
                f" writes {result['writes_per_s']}/s p50 {result['write_p50_ms']} ms"
                f" p99 {result['write_p99_ms']} ms; errors {result['errors'] or '-'}",
                flush=True,
            )
        return results
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def _create(port: int, key: str, count: int) -> list[str]:
    conn = Connection(port, key)
    ids = []
    for n in range(count):
        body = json.dumps({"headline": f"Embedded article {n}", "body": "<p>Text.</p>"}).encode()
        r = await conn.request("POST", "/api/v1/articles", body)
        if r.status != 201:
            raise RuntimeError(f"create: {r.status} {r.body[:200]!r}")
        ids.append(json.loads(r.body)["id"])
    conn.close()
    return ids


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    print(f"cms up on {HOST}, mixed load:")
    run(parser.parse_args().seconds)
