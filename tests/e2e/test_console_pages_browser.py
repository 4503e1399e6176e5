"""Partners and editors in a real browser (chromium through Playwright): a partner
rotates its secret (shown once), pings, replays, reads its delivery log, and gets a
404 for another partner's subscription; an editor schedules a publish, sees it under
"Coming next", publishes now, and a writer is offered none of it. Screenshots saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from tests.e2e.test_console_browser import _shot, browser  # noqa: F401 (the browser fixture)


def _sign_in(page, live, key):
    page.goto(f"{live.url}/console/login")
    page.fill("#key", key)
    page.click("button[type=submit]")


def test_a_partner_serves_itself_and_never_sees_another(live, browser):  # noqa: F811
    backend = live.app.config["CMS_DATABASE_URL"].split(":", 1)[0].split("+")[0]
    alice, bob = live.partner(), live.partner()
    mine = alice.call("POST", "/partner/v1/subscriptions", json={"url": "https://93.184.215.14/alice"}).json()
    theirs = bob.call("POST", "/partner/v1/subscriptions", json={"url": "https://93.184.215.14/bob"}).json()
    live.article(section=alice.section, headline="For Alice's desk")
    live.succeed(live.ready())  # delivered, as a worker would have recorded it

    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, live, alice.key)
    expect(page.locator("#subscriptions")).to_contain_text("https://93.184.215.14/alice")
    expect(page.locator("#subscriptions")).not_to_contain_text("/bob")
    _shot(page, f"partner-subscriptions-{backend}")

    page.click("a[href$='" + mine["id"] + "']")
    expect(page.locator("#deliveries")).to_contain_text("article.published")
    expect(page.locator("#deliveries")).to_contain_text("succeeded")
    page.click("text=Rotate secret")
    secret = page.locator("#new-secret code").inner_text()
    assert secret.startswith("whsec_") and secret != mine["secret"]
    _shot(page, f"partner-secret-rotated-{backend}")
    page.reload()
    assert secret not in page.content()  # shown once, never again
    page.click("text=Send a test ping")
    expect(page.locator(".notice")).to_contain_text("Test ping sent.")
    page.fill("#since", (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.click("form:has(#since) button")
    expect(page.locator(".notice")).to_contain_text("deliveries queued again.")
    _shot(page, f"partner-replayed-{backend}")

    # Bob's subscription and the newsroom's pages do not exist for Alice.
    response = page.goto(f"{live.url}/console/partner/subscriptions/{theirs['id']}")
    assert response.status == 404
    assert page.goto(f"{live.url}/console/ops").status == 403
    assert page.goto(f"{live.url}/console/articles").status == 403
    _shot(page, f"partner-forbidden-{backend}")
    context.close()


def test_an_editor_schedules_and_publishes_a_writer_cannot(live, browser):  # noqa: F811
    backend = live.app.config["CMS_DATABASE_URL"].split(":", 1)[0].split("+")[0]
    article = live.article(publish=False, headline="Budget vote results")
    editor = live.api("POST", "/api-keys", 201, json={"name": "night editor", "role": "editor"}).json()["key"]
    writer = live.api("POST", "/api-keys", 201, json={"name": "reporter", "role": "writer"}).json()["key"]

    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, live, writer)
    page.goto(f"{live.url}/console/articles/{article['id']}")
    expect(page.locator("#publish-form")).to_have_count(0)
    expect(page.locator("#schedule-form")).to_have_count(0)
    context.close()

    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, live, editor)
    page.goto(f"{live.url}/console/articles?q=budget+VOTE")
    page.click("#articles a")
    when = datetime.now(UTC) + timedelta(hours=1)
    page.fill("#publish_at", when.strftime("%Y-%m-%dT%H:%M"))
    page.click("#schedule-form button")
    expect(page.locator(".notice")).to_contain_text(f"publish at {when:%Y-%m-%d %H:%M} UTC")
    expect(page.locator("#pending")).to_contain_text("publish at")
    _shot(page, f"editor-scheduled-{backend}")
    page.click("text=Coming next")
    expect(page.locator("#scheduled")).to_contain_text("Budget vote results")
    _shot(page, f"coming-next-{backend}")

    page.click("#scheduled a")
    page.click("#publish-form button")
    expect(page.locator(".notice")).to_contain_text("Published version 1 (article.published).")
    assert live.api("GET", f"/articles/{article['id']}", 200).json()["state"] == "published"
    _shot(page, f"editor-published-{backend}")
    context.close()
