"""Change-feed cursors: partner-bound, tamper-evident, exact in shape."""

from __future__ import annotations

import re
import uuid

import pytest

from cms.events import feed
from cms.platform.errors import InvalidCursor

ALICE, BOB = bytes(32), bytes(range(32))


def test_cursors_round_trip_for_their_partner_only():
    article = uuid.uuid4()
    for cursor in (feed.Cursor(0), feed.Cursor(12_345_678_901), feed.Cursor(7, True, article)):
        raw = feed.encode(ALICE, cursor)
        assert re.fullmatch(feed.PATTERN, raw)  # the published pattern
        assert feed.decode(ALICE, raw) == cursor
        with pytest.raises(InvalidCursor):
            feed.decode(BOB, raw)
    assert feed.log_cursor(ALICE, 5) == feed.encode(ALICE, feed.Cursor(5))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "L1",
        "L1.abc",
        "X1.AAAAAAAAAAAAAAAAAAAAAA",
        "L-1.AAAAAAAAAAAAAAAAAAAAAA",
        "S1.AAAAAAAAAAAAAAAAAAAAAA",
        "L" + "9" * 20 + ".AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_cursors_are_refused(raw):
    with pytest.raises(InvalidCursor):
        feed.decode(ALICE, raw)


def test_an_edited_position_does_not_verify():
    _, _, mac = feed.log_cursor(ALICE, 41).rpartition(".")
    with pytest.raises(InvalidCursor):
        feed.decode(ALICE, f"L42.{mac}")
