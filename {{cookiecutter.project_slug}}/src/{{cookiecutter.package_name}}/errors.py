"""Every error is an RFC 9457 problem: application/problem+json with type, title, status,
detail, instance and the request id; 422s add the list of field errors. A JSON body sent
without Content-Type: application/json is a 415 that says so. Unhandled exceptions give a bare
500 problem and are logged with their traceback, never shown.
"""

import logging
from http import HTTPStatus
from collections.abc import Mapping, Sequence
from typing import Any, cast

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match

from .observability.logging import request_context
from .security.headers import api_headers

logger = logging.getLogger(__name__)
# RFC 9110's class names, the title of a status without a registered phrase (499, 599...).
STATUS_CLASSES = {1: "Informational", 2: "Successful", 3: "Redirection", 4: "Client Error"}
NOT_JSON = "The body must be JSON, sent with Content-Type: application/json."
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"


def status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return STATUS_CLASSES.get(status // 100, "Server Error")


def problem(
    request: Request,
    status: int,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    # The rate limits' headers, when a limit counted the request before it failed.
    headers = {**getattr(request.state, "rate_limit_headers", {}), **(headers or {})}
    body = Problem(
        title=status_title(status),
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        errors=errors,
    )
    return ProblemResponse(body.model_dump(exclude_none=True), status, headers)


def allowed_methods(request: Request) -> str:
    """Every method the request's path supports (RFC 9110 §15.5.6), asked of the app's routes
    one method at a time: the router's own 405 names only the first route that matched the
    path, though others may serve it too."""
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return ", ".join(allowed)


# Starlette types every handler as taking Exception; each is registered for one class only.
async def http_error(request: Request, exc: Exception) -> ProblemResponse:
    error = cast(HTTPException, exc)
    detail = error.detail if isinstance(error.detail, str) else None
    headers = error.headers
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return problem(request, error.status_code, detail, headers=headers)


def sent_as_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def sent_as_something_else(request: Request, errors: Sequence[Any]) -> bool:
    """Whether a JSON body was refused for its Content-Type: FastAPI then validates the body's
    bytes, which fail as a whole (an error at ("body",) other than a missing body)."""
    whole_body = any(e["loc"] == ("body",) and e["type"] != "missing" for e in errors)
    return whole_body and not sent_as_json(request)


async def validation_error(request: Request, exc: Exception) -> ProblemResponse:
    found = cast(RequestValidationError, exc).errors()
    if sent_as_something_else(request, found):
        return problem(request, 415, NOT_JSON)
    # Never echo the rejected input back: it may hold secrets. A body that a dependency reads
    # too (a route limit's `after=`) fails twice: each error is listed once.
    errors: list[FieldError] = []
    for e in found:
        error = FieldError(loc=list(e["loc"]), msg=e["msg"], type=e["type"])
        if error not in errors:
            errors.append(error)
    count = len(errors)
    detail = f"{count} invalid field{'s' if count != 1 else ''} in the request"
    return problem(request, 422, detail, errors=errors)


async def unhandled_error(request: Request, exc: Exception) -> ProblemResponse:
    with request_context(request.state):  # logged with the request's ids
        logger.error("unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
    response = problem(request, 500, "The server could not handle the request.")
    # This handler runs outside the middleware stack (Starlette's ServerErrorMiddleware), so it
    # sets the request id and the security headers itself.
    if request_id := getattr(request.state, "request_id", None):
        response.headers["x-request-id"] = request_id
    response.raw_headers.extend(api_headers(request.app.state.settings))
    return response


# For FastAPI(exception_handlers=...): every error a problem. (Upstream failures have their
# own handler in resilience/errors.py.)
EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_error,
    RequestValidationError: validation_error,
    Exception: unhandled_error,
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    500: {"model": Problem, "description": "Unexpected server error"},
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What every operation that reads a JSON body may answer before the route runs.
BODY_PROBLEMS = {
    "400": "The body is not UTF-8 JSON",
    "413": "The body is larger than MAX_BODY_BYTES",
    "415": "The body was not sent as application/json",
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Show every error body in the OpenAPI document as the Problem it really is, and the
    400, 413 and 415 of every operation that reads a JSON body."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                responses = operation.setdefault("responses", {})
                for status, description in BODY_PROBLEMS.items():
                    content = {"application/problem+json": {"schema": PROBLEM_REF}}
                    responses.setdefault(status, {"description": description, "content": content})
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
                if status == "422" or ref.endswith("/Problem"):
                    response["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
    for unused in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(unused, None)
    return schema
