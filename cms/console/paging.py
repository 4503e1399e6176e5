"""Keyset paging for console lists: ``?after=<cursor>`` (the API's cursor format,
``cms.platform.pagination``) and an "Older" link carrying the page's other filters."""

from __future__ import annotations

from typing import Any

from flask import abort, request, url_for

from cms.platform import pagination
from cms.platform.errors import InvalidCursor


def after(*kinds: type) -> tuple[Any, ...] | None:
    """The position to continue from, or None for the first page; 400 for a bad one."""
    raw = request.args.get("after", "")
    if not raw:
        return None
    try:
        return pagination.decode(raw, *kinds)
    except InvalidCursor:
        abort(400)


def older(endpoint: str, next_key: tuple[Any, ...] | None, **values: Any) -> str | None:
    """The next page's URL (None on the last page), with the current query's filters."""
    if next_key is None:
        return None
    args = {}
    if request.method == "GET":  # the filters only: never url_for's own options or the path's values
        args = {k: v for k, v in request.args.items() if k.isidentifier() and not k.startswith("_")}
        for name in ("after", "endpoint", *values):
            args.pop(name, None)
    return url_for(endpoint, **values, **args, after=pagination.encode(*next_key))
