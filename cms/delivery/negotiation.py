"""Which format a partner asked for: the ``format`` parameter, else ``Accept``.

``application/json`` (or no preference) is our JSON; ``application/ninjs+json``
takes a ``version``: 2.x is IPTC ninjs 2.1, 3.x (or none) ninjs 3.1. Anything we
cannot serve answers 406 with the list of what we can.
"""

from __future__ import annotations

from flask import request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

from cms.content.formats import MEDIA_TYPES
from cms.platform.http.problems import ApiError

FORMAT_NAMES = tuple(MEDIA_TYPES)
NINJS = "application/ninjs+json"
_ANY_JSON = {"application/json", "application/*", "*/*"}


def _ninjs(version: str | None) -> str | None:
    if version is None or version.startswith("3"):
        return "ninjs3"
    if version.startswith("2"):
        return "ninjs"
    return None


def _from_media_range(value: str) -> str | None:
    mimetype, params = parse_options_header(value)
    if mimetype == NINJS:
        return _ninjs(params.get("version"))
    return "json" if mimetype in _ANY_JSON else None


def chosen(fmt: str | None) -> str:
    """The format to answer in (``fmt``: the ``format`` query parameter, if given)."""
    if fmt is not None:
        if fmt in MEDIA_TYPES:
            return fmt
        raise _not_acceptable(f"Unknown format {fmt[:40]!r}.")
    header = request.environ.get("HTTP_ACCEPT")
    if not header:
        return "json"
    for value, quality in parse_accept_header(header, MIMEAccept):
        if quality > 0 and (found := _from_media_range(value)) is not None:
            return found
    raise _not_acceptable("None of the media types in Accept is served here.")


def _not_acceptable(detail: str) -> ApiError:
    return ApiError(
        406,
        "not-acceptable",
        "Format not available",
        f"{detail} Ask for format=json, ninjs (IPTC ninjs 2.1) or ninjs3 (3.1), or Accept: "
        "application/json or application/ninjs+json; version=2.1 or 3.1.",
        available=list(MEDIA_TYPES.values()),
    )
