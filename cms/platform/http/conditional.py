"""Conditional requests (RFC 9110 13): the article ETag, ``If-Match`` on revisions
(428 without, 400 when malformed, 412 when stale) and ``If-None-Match`` on reads (304)."""

from __future__ import annotations

import re
from datetime import datetime

from flask import Response, request

from cms.platform.http.problems import ApiError

# Ours: "v<version>" or "v<version>.<last change>" (see article_etag); anything else never matches.
_ETAG = re.compile(r'^\s*"v(\d{1,10})(?:\.[0-9a-f]{1,16})?"\s*$')
# Any entity tag (RFC 9110 8.8.3): [W/] DQUOTE *etagc DQUOTE.
_ENTITY_TAG = re.compile(r'^\s*(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"\s*$')


def if_match_versions() -> set[int]:
    """Versions named by ``If-Match``; 428 when the header is missing.

    Weak or foreign ETags never match (RFC 9110 strong comparison), which the
    service then reports as 412 with the current version.
    """
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        raise ApiError(
            428,
            "precondition-required",
            "If-Match required",
            "Send 'If-Match' with the ETag of the version you edited (from GET).",
        )
    if header.strip() == "*":
        raise ApiError(
            428,
            "precondition-required",
            "If-Match required",
            "'If-Match: *' would overwrite blindly; send the ETag of the version you edited.",
        )
    versions: set[int] = set()
    for part in header.split(","):
        if not part.strip():
            continue  # empty list elements are allowed (RFC 9110 5.6.1)
        if not _ENTITY_TAG.match(part):
            raise ApiError(
                400,
                "bad-if-match",
                "Malformed If-Match",
                'If-Match takes entity tags in double quotes, as the ETag header gives them: "v3…".',
            )
        match = _ETAG.match(part)
        if match:
            versions.add(int(match.group(1)))
    return versions


def not_modified(etag: str) -> Response | None:
    """304 when ``If-None-Match`` already names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if "HTTP_IF_NONE_MATCH" not in request.environ:
        return None
    if not request.if_none_match.contains_weak(etag.strip('"')):
        return None
    return Response(status=304, headers={"ETag": etag})


def unchanged(tag: str, changed_at: datetime) -> bool:
    """Whether the client holds this representation already (answer 304): ``If-None-Match``
    decides when sent (weak comparison, RFC 9110 13.1.2); else
    ``If-Modified-Since`` (whole seconds)."""
    environ = request.environ
    if (given := environ.get("HTTP_IF_NONE_MATCH")) is not None:
        # A poller sends back the one ETag it was given: no parsing for that.
        return given == tag or request.if_none_match.contains_weak(tag.strip('"'))
    since = request.if_modified_since if "HTTP_IF_MODIFIED_SINCE" in environ else None
    return since is not None and changed_at.replace(microsecond=0) <= since


IF_MATCH_HEADER = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": 'ETag of the version you edited, as GET gave it, e.g. `"v3.6262a4f1c2e10"` (or `"v3"`).',
    "schema": {"type": "string", "pattern": r'^"v[0-9]{1,9}(\.[0-9a-f]{1,16})?"$'},
}
ETAG_RESPONSE_HEADER = {
    "ETag": {"description": "The latest version and the article's last change", "schema": {"type": "string"}}
}
IF_NONE_MATCH_HEADER = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags you hold; 304 (no body) when the article has not changed since.",
    "schema": {"type": "string"},
}
