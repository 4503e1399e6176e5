"""The console in a real browser (Debian's chromium through Playwright): an editor signs
in, opens the seed story's history after a one-word change and sees just that word; the
Content-Security-Policy holds (no script runs without the page's nonce); a form posted
without its CSRF token is refused. Screenshots of each page are saved (path printed)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.helpers import seed_fields

SHOTS = Path(os.environ.get("CMS_SCREENSHOTS", Path(__file__).resolve().parents[2] / "var" / "screenshots"))


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed for this test: apt-get install chromium (make test tries to)"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


SAVED: list[Path] = []  # listed at the end of the run (tests/conftest.py), so CI's log names them


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SAVED.append(path)


def test_an_editor_sees_a_one_word_change_as_that_word(live, browser):
    backend = live.app.config["CMS_DATABASE_URL"].split(":", 1)[0].split("+")[0]
    fields = seed_fields()
    article = live.api("POST", "/articles", 201, json=fields).json()
    word = re.search(r"\b(congratulated|said|stated)\b", fields["body"]).group(1)
    live.save_draft(article["id"], body=fields["body"].replace(word, "hailed", 1))
    key = live.api("POST", "/api-keys", 201, json={"name": "desk editor", "role": "editor"}).json()["key"]

    context = browser.new_context()
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{live.url}/console/articles/{article['id']}")
    assert page.url.startswith(f"{live.url}/console/login")
    _shot(page, f"login-{backend}")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/console/articles/{article['id']}")
    _shot(page, f"article-diff-{backend}")
    assert page.locator("#body-diff ins").all_inner_texts() == ["hailed"]
    assert page.locator("#body-diff del").all_inner_texts() == [word]
    assert "No other field changed." in page.inner_text("main")

    # The CSP: the page itself has no script without the nonce; an injected inline script
    # (no nonce) does not run, and the browser says why.
    assert page.evaluate("() => document.querySelectorAll('script:not([nonce])').length") == 0
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("() => window.pwned") is None
    assert any("Content Security Policy" in v for v in violations)

    page.goto(f"{live.url}/console/articles")
    _shot(page, f"articles-{backend}")
    assert article["headline"] in page.inner_text("main")

    # A form without its token is refused; the session stays.
    page.evaluate("() => document.querySelector('form.logout input[name=csrf_token]').remove()")
    page.click("form.logout button")
    assert "Form expired" in page.inner_text("main")
    _shot(page, f"csrf-refused-{backend}")
    page.goto(f"{live.url}/console/articles")
    assert page.url == f"{live.url}/console/articles"
    context.close()
