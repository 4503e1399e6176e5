"""OpenAPI 3 document generated from the registered routes and their marshmallow schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify
from marshmallow import Schema, fields, validate
from werkzeug.routing import Rule

from cms.platform.http.fields import NonBlank, ProblemSchema, Str
from cms.platform.http.problems import PROBLEM_JSON
from cms.platform.http.routing import Media, Operation

bp = Blueprint("openapi", __name__)

ERROR_TITLES = {
    400: "Malformed request (bad JSON, header or cursor)",
    401: "Missing or invalid API key",
    403: "The key's role does not allow this",
    404: "Not found",
    409: "Conflicts with the article's state or another article",
    412: "If-Match names a version that is no longer the latest",
    413: "Request body too large",
    414: "URL too long",
    415: "Body is not JSON",
    422: "Validation failed (each bad field listed)",
    410: "Withdrawn (killed): take it down",
    406: "None of the formats asked for (Accept or format) is served here",
    428: "If-Match header required",
    429: "Over the partner's request rate; retry after Retry-After seconds",
    503: "Database busy or unreachable; retry",
}

_PARAM = re.compile(r"<(?:(?P<conv>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")


def _path_and_params(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params: list[dict[str, Any]] = []

    def repl(m: re.Match[str]) -> str:
        conv, name = m.group("conv") or "string", m.group("name")
        schema: dict[str, Any] = {"type": "string"}
        if conv == "uuid":
            schema = {"type": "string", "format": "uuid"}
        elif conv == "int":
            schema = {"type": "integer", "minimum": 1, "maximum": 2147483647}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _PARAM.sub(repl, rule), params


def _schema_name(schema: Schema) -> str:
    name = type(schema).__name__
    return name[:-6] if name.endswith("Schema") else name


NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"  # and something that is not white space


def _str_pattern(converter: Any, field: Any, **_kwargs: Any) -> dict[str, Any]:
    """What our ``Str`` and ``NonBlank`` refuse, as a pattern: NUL characters (the
    databases cannot store them) and, where asked, nothing but white space."""
    if not isinstance(field, Str) or any(isinstance(v, validate.Regexp) for v in field.validators):
        return {}
    if any(isinstance(v, NonBlank) for v in field.validators):
        return {"pattern": NOT_BLANK}
    return {"pattern": NO_NUL}


def _property_names(converter: Any, field: Any, **_kwargs: Any) -> dict[str, Any]:
    """A dict's keys are validated too (header names): publish that as ``propertyNames``."""
    if isinstance(field, fields.Dict) and field.key_field is not None:
        return {"propertyNames": converter.field2property(field.key_field)}
    return {}


def build_spec(app: Flask) -> dict[str, Any]:
    spec = _new_spec()
    paths: dict[str, dict[str, Any]] = {}
    for rule, op in _documented_routes(app):
        path, params = _path_and_params(rule.rule)
        params = [{**p, "schema": op.path.get(p["name"], p["schema"])} for p in params]
        paths.setdefault(path, {})[op.method] = _operation(rule.endpoint, op, params)
    for path in sorted(paths):
        spec.path(path=path, operations=paths[path])
    return spec.to_dict()


def _new_spec() -> APISpec:
    """The document's header, our field conventions and the shared components."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="Newsroom CMS API",
        version="1.0.0",
        # 3.1 (JSON Schema 2020-12): a nullable nested object is "anyOf: [$ref, null]" and a
        # dict's keys can be described (propertyNames); 3.0 can say neither.
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Authoring API (versioned articles, editorial states), the webhook "
            "engine's and partners' administration (`/api/v1`, newsroom API keys); the "
            "published-content API and change feed (`/content/v1`) and partner self-service "
            "(`/partner/v1`), with partner keys. Authenticate with "
            "`Authorization: Bearer <key>`. Errors are RFC 9457 problem details.",
        },
        servers=[{"url": "/"}],
    )
    plugin.converter.add_attribute_function(_str_pattern)  # type: ignore[union-attr]
    plugin.converter.add_attribute_function(_property_names)  # type: ignore[union-attr]
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "partnerKey", {"type": "http", "scheme": "bearer", "description": "A partner's own key (cmsp_…)."}
    )
    spec.components.schema("Problem", schema=ProblemSchema)
    return spec


def _documented_routes(app: Flask) -> Iterator[tuple[Rule, Operation]]:
    """Routes registered with ``routing.route``; the others (this document, the docs
    page, static files) are not part of the API."""
    for rule in app.url_map.iter_rules():
        op: Operation | None = getattr(app.view_functions.get(rule.endpoint), "__operation__", None)
        if op is not None:
            yield rule, op


def _operation(endpoint: str, op: Operation, params: list[dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [*params, *op.headers],
        "responses": {},
    }
    if op.description:
        operation["description"] = " ".join(op.description.split())
    _add_security(operation, op)
    if op.query is not None:
        operation["parameters"].append({"in": "query", "schema": op.query})
    if op.body is not None:
        operation["requestBody"] = _request_body(op.body)
    operation["responses"] = _responses(op)
    return operation


def _add_security(operation: dict[str, Any], op: Operation) -> None:
    """An operation with a role needs a bearer key and says which role; a partner
    operation a partner key; the others are open."""
    if op.partner:
        operation["security"] = [{"partnerKey": []}]
        operation["description"] = "Partner key (`cmsp_…`). " + operation.get("description", "")
    elif op.role is not None:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Role: `{op.role}` or higher. " + operation.get("description", "")
    else:
        operation["security"] = []


def _request_body(body: Schema) -> dict[str, Any]:
    """An empty body is read as {}: the body is only required when a field is. A schema's
    ``OPENAPI_RULES`` (JSON Schema keywords for rules across fields, such as "one of these
    is required") are stated beside it."""
    rules = getattr(body, "OPENAPI_RULES", None)
    schema: Any = {"allOf": [body], **rules} if rules else body
    return {
        "required": any(f.required for f in body.fields.values()) or bool(rules),
        "content": {"application/json": {"schema": schema}},
    }


def _responses(op: Operation) -> dict[str, Any]:
    """The declared responses, then each error status as a problem document."""
    responses: dict[str, Any] = {}
    for status, (description, schema) in op.responses.items():
        response: dict[str, Any] = {"description": description}
        if isinstance(schema, Media):
            response["content"] = {media: {"schema": s} for media, s in schema.types.items()}
        elif schema is not None:
            response["content"] = {"application/json": {"schema": schema}}
        if status in op.response_headers:
            response["headers"] = op.response_headers[status]
        responses[str(status)] = response
    for status in op.errors:
        responses[str(status)] = {
            "description": ERROR_TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": "Problem"}},
        }
    return responses


@bp.get("/openapi.json")
def openapi_json() -> Response:
    cached = current_app.extensions.get("cms_openapi")
    if cached is None:
        cached = current_app.extensions["cms_openapi"] = build_spec(current_app)
    return jsonify(cached)
