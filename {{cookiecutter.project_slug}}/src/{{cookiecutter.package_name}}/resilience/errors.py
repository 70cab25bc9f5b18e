"""Upstream failures, each with the status the service answers with, and their problem handler.

A dependency failure is never a 500: the upstream is unavailable (503, with Retry-After), too
slow (504), answered that the thing does not exist (404), or answered nonsense (502).
`transient` failures are the ones worth trying again: they are retried and they count against
the upstream's circuit breaker.
"""

import math
from typing import Any, cast

from fastapi import Request

from ..errors import Problem, ProblemResponse, problem


class UpstreamError(Exception):
    """The upstream gave no usable answer: 502 Bad Gateway unless a subclass says otherwise."""

    status = 502
    transient = False

    def __init__(self, upstream: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{upstream}: {detail}")
        self.upstream = upstream
        self.detail = detail
        self.retry_after = retry_after  # seconds, when known (an upstream's Retry-After)


class UpstreamUnavailable(UpstreamError):
    """Refused or dropped the connection, or answered 429/502/503/504."""

    status = 503
    transient = True


class UpstreamTimeout(UpstreamError):
    """An attempt got no answer in time."""

    status = 504
    transient = True


class CircuitOpenError(UpstreamUnavailable):
    """Failed fast: the breaker is open, the upstream was not called."""

    transient = False


class BulkheadFullError(UpstreamUnavailable):
    """Failed fast: too many calls to this upstream in flight already."""

    transient = False


class DeadlineExceeded(UpstreamTimeout):
    """The call's whole budget ran out (waits and retries included)."""

    transient = False


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404: an answer, not a failure."""

    status = 404


async def upstream_error(request: Request, exc: Exception) -> ProblemResponse:
    error = cast(UpstreamError, exc)
    headers = None
    if error.status == 503:
        # Tell clients when to come back rather than letting them hammer a failing dependency.
        headers = {"Retry-After": str(max(1, math.ceil(error.retry_after or 1)))}
    return problem(request, error.status, error.detail, headers=headers)


UPSTREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    502: {"model": Problem, "description": "An upstream service answered unexpectedly"},
    503: {"model": Problem, "description": "An upstream service is unavailable; see Retry-After"},
    504: {"model": Problem, "description": "An upstream service did not answer in time"},
}
