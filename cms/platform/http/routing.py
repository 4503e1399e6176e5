"""The HTTP plumbing every endpoint shares: routing, auth, parsing, ETags.

``route`` registers a view on a blueprint and records what the OpenAPI
document needs (schemas, role, errors), so the spec cannot drift from the code.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from flask import Blueprint, Response, current_app, g, jsonify, request
from marshmallow import Schema, ValidationError

from cms.platform.actors import PARTNER_KEY_PREFIX, Actor, PartnerPrincipal, Role
from cms.platform.extensions import db
from cms.platform.http.problems import ApiError, field_errors


@dataclass(frozen=True)
class Media:
    """A response served in several media types (content negotiation), a schema each
    (a marshmallow schema, or a JSON Schema as a dict)."""

    types: dict[str, Any]


@dataclass
class Operation:
    """What the OpenAPI generator knows about one endpoint."""

    method: str
    rule: str
    summary: str
    tag: str
    role: Role | None
    body: Schema | None = None
    query: Schema | None = None
    responses: dict[int, tuple[str, Schema | Media | None]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    headers: tuple[dict[str, Any], ...] = ()
    response_headers: dict[int, dict[str, Any]] = field(default_factory=dict)
    description: str | None = None
    partner: bool = False
    # Path parameters documented more narrowly than their converter takes them (the
    # values served; the view answers the others itself, e.g. 406 for a format).
    path: dict[str, dict[str, Any]] = field(default_factory=dict)


def route(
    bp: Blueprint,
    method: str,
    rule: str,
    *,
    summary: str,
    role: Role | None,
    responses: dict[int, tuple[str, Schema | Media | None]],
    body: Schema | None = None,
    query: Schema | None = None,
    errors: Iterable[int] = (),
    headers: Iterable[dict[str, Any]] = (),
    response_headers: dict[int, dict[str, Any]] | None = None,
    description: str | None = None,
    partner: bool = False,
    query_error_status: int = 422,
    path: dict[str, dict[str, Any]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` for ``method rule``; it receives ``actor``, path args, ``body``, ``query``.

    ``partner``: the caller is a partner with its own key (``PartnerPrincipal`` as
    ``actor``), rate-limited; ``role`` is then None. ``query_error_status``: the status
    for a query that fails its schema (the partner APIs answer 400, as for a bad cursor)."""
    implied: set[int] = set(errors)
    if role is not None or partner:
        implied |= {401, 403}
    if partner:
        implied.add(429)
    if body is not None:
        implied |= {400, 413, 415, 422}
    if query is not None:
        implied |= {400, query_error_status}
    if "<" in rule:
        implied.add(404)
    if any(h["name"] == "If-Match" for h in headers):
        implied |= {400, 412, 428}  # malformed, stale, missing
    implied |= {414, 503}

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(
            method=method.lower(),
            rule=rule,
            summary=summary,
            tag=bp.name,
            role=role,
            body=body,
            query=query,
            responses=responses,
            errors=tuple(sorted(implied)),
            headers=tuple(headers),
            response_headers=response_headers or {},
            description=description or fn.__doc__,
            partner=partner,
            path=path or {},
        )

        @functools.wraps(fn)
        def view(**path_args: Any) -> Any:
            kwargs: dict[str, Any] = dict(path_args)
            if partner:
                kwargs["actor"] = authenticate_partner()
            else:
                kwargs["actor"] = authenticate(role) if role is not None else None
            if query is not None:
                kwargs["query"] = parse_query(query, query_error_status)
            if body is not None:
                kwargs["body"] = parse_body(body)
            return fn(**kwargs)

        view.__operation__ = op  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return decorator


def _bearer_token() -> str:
    header = request.environ.get("HTTP_AUTHORIZATION", "")  # cheaper than request.headers
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthenticated",
            "Authentication required",
            "Send 'Authorization: Bearer <API key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="cms"'},
        )
    return token.strip()


def _invalid_key(detail: str) -> ApiError:
    return ApiError(
        401,
        "unauthenticated",
        "Invalid API key",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="cms", error="invalid_token"'},
    )


def authenticate(required: Role) -> Actor:
    """The caller's actor; 401 without a valid key, 403 when its role is too low."""
    token = _bearer_token()
    # The app installs the key lookup (cms.accounts): the platform knows no capability.
    actor = current_app.extensions["cms_authenticate"](db.session, token)
    if actor is None:
        if token.startswith(PARTNER_KEY_PREFIX):
            raise _invalid_key("This is a partner key: it works only on /content/v1 and /partner/v1.")
        raise _invalid_key("The API key is unknown or has been revoked.")
    if not actor.can(required):
        raise ApiError(
            403,
            "forbidden",
            "Not allowed for this role",
            f"This operation needs the '{required}' role; your key has '{actor.role}'.",
            required_role=str(required),
            role=str(actor.role),
        )
    g.actor = actor
    return actor


def authenticate_partner() -> PartnerPrincipal:
    """The calling partner; 401 without a valid partner key, 403 when the partner is
    disabled, 429 (with Retry-After) over its request rate."""
    token = _bearer_token()
    principal = current_app.extensions["cms_authenticate_partner"](db.session, token)
    if principal is None:
        if not token.startswith(PARTNER_KEY_PREFIX):
            raise _invalid_key("This API takes partner keys (cmsp_...); ask the newsroom for one.")
        raise _invalid_key("The partner key is unknown or has been revoked.")
    if not principal.enabled:
        raise ApiError(403, "partner-disabled", "Partner disabled", "This partner account is disabled.")
    limiter = current_app.extensions.get("cms_rate_limiter")
    if limiter is not None:
        wait = limiter.refused(str(principal.partner_id), principal.rate_limit_per_minute)
        if wait is not None:
            raise ApiError(
                429,
                "rate-limited",
                "Too many requests",
                f"This partner may make {principal.rate_limit_per_minute} requests a minute.",
                headers={"Retry-After": str(wait)},
            )
    g.actor = principal
    return principal


def parse_body(schema: Schema) -> dict[str, Any]:
    """Load a JSON object body with ``schema`` (raises ValidationError -> 422).

    An empty body counts as ``{}`` whatever its content type, so
    ``POST /articles/{id}/publish`` works without one.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        payload: Any = {}
    elif not request.is_json:
        raise ApiError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    else:
        try:
            payload = json.loads(raw)
        except ValueError:  # includes undecodable bytes
            raise ApiError(
                400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
            ) from None
        except RecursionError:
            payload = _TOO_DEEP
        if payload is _TOO_DEEP or _too_deep(payload):
            raise ApiError(
                400,
                "malformed-json",
                "JSON nested too deeply",
                f"The request body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep.",
            )
    g.raw_body = payload
    return schema.load(payload)


MAX_JSON_DEPTH = 32  # our bodies nest 3 levels; anything deeper would only reach recursion limits
_TOO_DEEP = object()


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests deeper than MAX_JSON_DEPTH (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


_QUERIES: LRUCache[tuple[int, str], dict[str, Any]] = LRUCache(maxsize=4096)  # (schema, query) -> loaded
_QUERIES_LOCK = threading.Lock()


def parse_query(schema: Schema, error_status: int = 422) -> dict[str, Any]:
    """The query string through ``schema``. Loading is a pure function of the two, and
    pollers send the same URL again and again (a feed reader, a partner's list): the
    result is kept per (schema, query string), in a bounded LRU; only successes are."""
    key = (id(schema), request.environ.get("QUERY_STRING", ""))
    with _QUERIES_LOCK:
        known = _QUERIES.get(key)
    if known is not None:
        return dict(known)
    try:
        loaded = schema.load(request.args.to_dict(flat=True))
        with _QUERIES_LOCK:
            _QUERIES[key] = dict(loaded)
        return loaded
    except ValidationError as exc:
        if error_status == 422:
            raise
        raise ApiError(
            error_status,
            "invalid-query",
            "Invalid query parameter",
            "One or more query parameters are invalid.",
            errors=field_errors(exc.messages),
        ) from None


def commit() -> None:
    """Commit the request's unit of work; after-commit hooks (worker nudges) then run."""
    db.session.commit()


def respond(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(payload)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
