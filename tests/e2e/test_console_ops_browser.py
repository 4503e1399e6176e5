"""Ops in a real browser with a real worker: a failing partner shows on the overview
and the subscription pages; after the receiver is fixed, a click on Redeliver and the
delivery succeeds, and the overview no longer lists it as failing."""

from __future__ import annotations

import threading

from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.e2e.test_console_browser import _shot, browser  # noqa: F401 (the browser fixture)
from tests.helpers import eventually
from tests.receivers import Receiver


def test_ops_sees_a_failing_partner_and_redelivers_after_the_fix(stack, browser):  # noqa: F811
    receiver = Receiver()
    receiver.rule = lambda path, body: 500  # the partner's receiver is broken
    server = make_server("127.0.0.1", 0, stack.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        stack.worker()
        stack.beat()
        sub = stack.subscribe(receiver.url())
        article = stack.article(headline="Story the partner must get")
        stack.publish(article["id"])
        receiver.wait_for(lambda rs: len(rs) >= 6, timeout=60, what="every retry")  # the schedule runs out

        page = browser.new_page()
        page.goto(f"{url}/console/login")
        page.fill("#key", stack.admin_key)
        page.click("button[type=submit]")
        # Signed in, ops land on the overview: the failing partner is there with its last error.
        expect(page.locator("h1")).to_contain_text("Delivery overview")
        failing = page.locator("#failing tr.failing")
        expect(failing).to_have_count(1)
        expect(failing).to_contain_text("HTTP 500")
        expect(failing).to_contain_text("no more retries")
        expect(page.locator("svg.chart")).to_have_count(3)
        _shot(page, "ops-overview-failing")
        page.goto(f"{url}/console/ops/subscriptions")
        expect(page.locator("tr.failing")).to_have_count(1)
        _shot(page, "ops-subscriptions-failing")
        page.click(f"a[href='/console/ops/subscriptions/{sub['id']}']")
        expect(page.locator("#deliveries tr.status-failed")).to_have_count(1, timeout=30_000)
        _shot(page, "ops-subscription-failed")

        receiver.rule = None  # fixed
        page.click("#deliveries tr.status-failed button")
        expect(page.locator(".notice")).to_contain_text("Queued again")
        # The page is rendered on the server: wait (with a deadline) until the delivery
        # succeeded, then load it again and see it there.
        eventually(
            lambda: any(
                d["status"] == "succeeded"
                for d in stack.api("GET", f"/deliveries?subscription_id={sub['id']}", 200).get_json()["items"]
            ),
            timeout=60,
            what="the redelivery to succeed",
        )
        page.reload()
        expect(page.locator("#deliveries tr.status-succeeded")).to_have_count(1)
        _shot(page, "ops-subscription-redelivered")
        assert receiver.ok() and article["id"].encode() in receiver.ok()[-1].body
        page.click("#deliveries tr.status-succeeded a")  # the event's page: who got it
        expect(page.locator("h1")).to_contain_text("Event")
        expect(page.locator("#deliveries tr.status-succeeded")).to_have_count(1)
        _shot(page, "ops-event")
        page.goto(f"{url}/console/ops")  # healthy again
        expect(page.locator("#failing tr.failing")).to_have_count(0)
        expect(page.locator("#failed-total")).to_have_text("1")  # the hour still shows the failure
        _shot(page, "ops-overview-recovered")
    finally:
        server.shutdown()
        receiver.close()
