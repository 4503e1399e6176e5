"""The change feed over real HTTP, on SQLite and PostgreSQL: initial sync, then every
change in commit order, tombstones, partner-bound cursors, and no gap under
concurrent publishes."""

from __future__ import annotations

import threading

from tests.helpers import at_once


def drain(partner, after=None, limit=3, **params):
    """Every change from ``after`` on, page by page; returns (changes, last cursor)."""
    changes = []
    while True:
        query = {"limit": limit, **params, **({"after": after} if after else {})}
        page = partner.get("/content/v1/changes", params=query)
        assert page.status_code == 200, page.text
        body = page.json()
        changes += body["changes"]
        after = body["next"]
        if not body["more"]:
            return changes, after


def test_initial_sync_then_the_log_with_tombstones(live):
    partner = live.partner()
    first = [live.article(section=partner.section) for _ in range(4)]
    live.article(section=partner.section, publish=False)  # a draft is no change for partners
    synced, cursor = drain(partner, limit=3)
    assert sorted(c["article_id"] for c in synced) == sorted(a["id"] for a in first)
    assert {c["type"] for c in synced} == {"article.published"}
    assert all(c["data"]["article"]["headline"] for c in synced)

    later = live.article(section=partner.section)
    live.save_draft(first[0]["id"], headline="Updated headline")
    live.act(first[0]["id"], "publish")
    live.act(first[1]["id"], "unpublish", reason="Duplicate")
    live.act(first[2]["id"], "kill", reason="Court order")

    changes, end = drain(partner, after=cursor)
    assert [(c["type"], c["article_id"]) for c in changes] == [
        ("article.published", later["id"]),
        ("article.updated", first[0]["id"]),
        ("article.unpublished", first[1]["id"]),
        ("article.killed", first[2]["id"]),
    ]
    assert changes[1]["data"]["article"]["headline"] == "Updated headline" and changes[1]["version"] == 2
    killed = changes[3]["data"]
    assert killed["reason"] == "Court order" and killed["article"]["state"] == "killed"
    assert "headline" not in killed["article"]  # a tombstone carries no text
    # Each change carries the cursor to resume right after it.
    rest, _ = drain(partner, after=changes[1]["cursor"])
    assert [c["event_id"] for c in rest] == [c["event_id"] for c in changes[2:]]
    assert drain(partner, after=end)[0] == []
    # The events are the webhooks' events: same ids as the admin's event log.
    events = live.api("GET", f"/events?article_id={first[2]['id']}", 200).json()["items"]
    assert killed["event_id"] in {e["id"] for e in events}


def test_a_cursor_is_the_partners_own(live):
    alice, bob = live.partner(), live.partner()
    live.article(section=alice.section)
    _, cursor = drain(alice)
    assert alice.get("/content/v1/changes", params={"after": cursor}).status_code == 200
    stolen = bob.get("/content/v1/changes", params={"after": cursor})
    assert stolen.status_code == 400 and stolen.json()["type"].endswith("/invalid-cursor")
    body, _, mac = cursor.rpartition(".")
    forged = f"L{int(body[1:]) + 5}.{mac}"
    assert alice.get("/content/v1/changes", params={"after": forged}).status_code == 400
    assert alice.get("/content/v1/changes", params={"after": "L1.short"}).status_code == 400


def test_no_change_is_skipped_under_concurrent_publishes(live):
    """Writers publish and update concurrently while a reader follows the feed with
    small pages; every event arrives exactly once, in increasing positions."""
    partner = live.partner()
    writers, rounds = 6, 5
    articles = [live.article(section=partner.section, publish=False) for _ in range(writers)]
    _, cursor = drain(partner)
    published: list[str] = []
    seen: list[dict] = []
    done = threading.Event()
    lock = threading.Lock()

    def write(i: int) -> None:
        for n in range(rounds):
            if n:
                live.save_draft(articles[i]["id"], headline=f"Round {n} of {i}")
            result = live.act(articles[i]["id"], "publish")
            with lock:
                published.append(result["event"]["id"])

    def read() -> None:
        nonlocal cursor
        while True:
            finished = done.is_set()
            changes, cursor = drain(partner, after=cursor, limit=2)
            seen.extend(changes)
            if finished:
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        at_once(writers, write)
    finally:
        done.set()
        reader.join(timeout=120)
    assert not reader.is_alive()
    assert len(published) == writers * rounds
    ids = [c["event_id"] for c in seen]
    assert sorted(ids) == sorted(published) and len(set(ids)) == len(ids)
    positions = [int(c["cursor"].split(".")[0][1:]) for c in seen]
    assert positions == sorted(positions)
    # Per article, versions arrive in order.
    for article in articles:
        versions = [c["version"] for c in seen if c["article_id"] == article["id"]]
        assert versions == sorted(versions) and len(versions) == rounds
