"""The interactive API documentation, loaded in headless Chromium (Debian's package)
from the app itself: the page must work offline and list every operation."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.helpers import free_port

CMS = str(Path(sys.executable).parent / "cms")


def test_docs_page_lists_every_operation_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed for this test: apt-get install chromium (make test tries to)"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMS_")}
    env.update({"CMS_VAR_DIR": str(tmp_path / "var"), "CMS_BROKER_URL": ""})
    subprocess.run([CMS, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [CMS, "run", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        for _ in range(100):
            try:
                spec = requests.get(f"{base}/openapi.json", timeout=5).json()
                break
            except requests.RequestException:  # refused while binding, or slow while the worker boots
                time.sleep(0.1)
        operations = {
            (path, method)
            for path, item in spec["paths"].items()
            for method in item
            if method != "parameters"
        }
        page = requests.get(f"{base}/docs", timeout=5)
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "http" not in re.sub(r'href="/|src="/', "", page.text.split("<body>")[1])  # no CDN
        dom = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium'}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{base}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
    rendered = re.findall(r'class="opblock-summary-method">(\w+)<', dom)
    assert len(rendered) == len(operations) > 20
    for summary in (
        "Create an article",
        "Publish a version",
        "Create a webhook subscription",
        "Send a delivery again",
    ):
        assert summary in dom
    assert "Authorize" in dom  # bearer authentication from the spec
