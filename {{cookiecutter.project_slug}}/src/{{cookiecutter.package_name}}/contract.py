"""The OpenAPI document, told whole: what FastAPI writes from the routes, plus what the routes
cannot say themselves (FastAPI's "Extending OpenAPI" recipe: `app.openapi = contract_openapi(app)`
in main.py).

- Every error body is the Problem it really is (errors.py's `document_problems`).
- The headers the middleware and the rate limits add: X-Request-ID on every answer,
  Access-Control-Allow-Origin (when CORS_ORIGINS lists the caller's Origin), X-RateLimit-* on
  the 2xx and 4xx of every rate-limited operation, Retry-After on their 429s and 503s.
- Integers' format and bounds: int32 when their bounds fit, else int64, whose bounds an
  integer without its own gets. Give a parameter `ge`/`le` where it accepts less.
- A list answer's maxItems: the maximum of its operation's `limit` query parameter.
- Bounds only known at run time: `Field(json_schema_extra=max_length_from("<setting>"))` on a
  string documents the setting's value as its maxLength.
The 500 of every operation (an unhandled error) leaves the middleware: its headers are not listed.
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .errors import document_problems
from .security.rate_limit import EXEMPT_PREFIXES
from .settings import Settings

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_LENGTH_SETTING = "x-max-length-setting"
COUNTED = "Sent once the request is counted (not on a body refused unread, nor with limits off)"


def header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "schema": schema}


def count(minimum: int) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "minimum": minimum, "maximum": INT64[1]}


EVERY_ANSWER = {
    "X-Request-ID": header(
        "The request's id: the caller's own X-Request-ID if valid, else a new one",
        {"type": "string", "maxLength": 128},
    ),
    "Access-Control-Allow-Origin": header(
        "The caller's Origin, when CORS_ORIGINS lists it (not on an answer of the edge, which"
        " comes first: a Host not allowed, a body over MAX_BODY_BYTES)",
        {"type": "string", "maxLength": 2048},
    ),
}
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": header(f"Requests allowed in the window. {COUNTED}", count(1)),
    "X-RateLimit-Remaining": header(f"Requests left in the window. {COUNTED}", count(0)),
    "X-RateLimit-Reset": header(f"When the window ends, in epoch seconds. {COUNTED}", count(0)),
}
RETRY_AFTER = {"Retry-After": header("Seconds to wait before trying again", count(1))}


def max_length_from(setting: str) -> dict[str, Any]:
    """For `Field(json_schema_extra=...)`: the string's maxLength is `setting`'s value."""
    return {MAX_LENGTH_SETTING: setting}


def document_headers(path: str, operation: dict[str, Any]) -> None:
    limited = not path.startswith(EXEMPT_PREFIXES)
    for status, response in operation.get("responses", {}).items():
        if status == "500":
            continue
        headers = response.setdefault("headers", {})
        headers.update(EVERY_ANSWER)
        if limited and status[0] in "24":
            headers.update(RATE_LIMIT_HEADERS)
        if limited and status in ("429", "503"):
            headers.update(RETRY_AFTER)


def document_page_size(operation: dict[str, Any]) -> None:
    limits = [p for p in operation.get("parameters", []) if p["name"] == "limit"]
    maximum = limits[0]["schema"].get("maximum") if limits else None
    for response in operation.get("responses", {}).values():
        for content in response.get("content", {}).values():
            if maximum is not None and content.get("schema", {}).get("type") == "array":
                content["schema"]["maxItems"] = maximum


def document_numbers(node: Any, settings: Settings) -> None:
    """Integers' format and bounds, and the maxLength a setting gives, wherever they are."""
    if isinstance(node, list):
        for item in node:
            document_numbers(item, settings)
        return
    if not isinstance(node, dict):
        return
    if setting := node.pop(MAX_LENGTH_SETTING, None):
        node["maxLength"] = getattr(settings, setting)
    if node.get("type") == "integer":
        if "minimum" not in node and "exclusiveMinimum" not in node:
            node["minimum"] = INT64[0]
        if "maximum" not in node and "exclusiveMaximum" not in node:
            node["maximum"] = INT64[1]
        low = node["minimum"] if "minimum" in node else node["exclusiveMinimum"]
        high = node["maximum"] if "maximum" in node else node["exclusiveMaximum"]
        node.setdefault("format", "int32" if INT32[0] <= low and high <= INT32[1] else "int64")
    for value in node.values():
        document_numbers(value, settings)


def document_contract(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    document_problems(schema)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            document_headers(path, operation)
            document_page_size(operation)
    document_numbers(schema, settings)
    return schema


def contract_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI document, built once, as `app.openapi`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = document_contract(document, app.state.settings)
        return app.openapi_schema

    return openapi
