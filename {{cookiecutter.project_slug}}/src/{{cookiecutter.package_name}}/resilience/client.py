"""An upstream: one pooled HTTP client, with the policies composed around each call.

deadline -> bulkhead -> circuit breaker -> retry -> per-attempt timeout (why: __init__.py).
"""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from fastapi import FastAPI

from ..health import register_check
from ..observability.metrics import record_upstream_latency
from ..observability.tracing import TracedTransport
from .breaker import Breaker
from .bulkhead import Bulkhead
from .errors import UpstreamError, UpstreamNotFound, UpstreamUnavailable
from .policy import UpstreamPolicy
from .retry import IDEMPOTENT_METHODS, TRANSIENT_STATUSES, retry_after_seconds, retrying
from .timeout import Deadline, attempt_within

# Connection refused, reset or dropped mid-answer: worth another try. (A timeout inside httpx2
# is one too; its own read timeout is a backstop, our per-attempt timeout comes first.)
TRANSIENT_TRANSPORT_ERRORS = (
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
    httpx2.TimeoutException,
)


def create_http_client(policy: UpstreamPolicy) -> httpx2.AsyncClient:
    """The one place an upstream's HTTP client is made: one pool per upstream, sized to its
    bulkhead so that a call holding a slot never waits for a connection; calls made inside a
    sampled request get a client span and pass the trace on (traceparent)."""
    pool = httpx2.AsyncHTTPTransport(
        limits=httpx2.Limits(
            max_connections=policy.max_concurrency,
            max_keepalive_connections=policy.max_concurrency,
        )
    )
    return httpx2.AsyncClient(
        base_url=policy.base_url,
        timeout=httpx2.Timeout(policy.attempt_timeout, connect=policy.connect_timeout),
        transport=TracedTransport(pool),
    )


class Upstream:
    def __init__(self, policy: UpstreamPolicy, client: httpx2.AsyncClient) -> None:
        self.name = policy.name
        self.policy = policy
        self.client = client
        self.bulkhead = Bulkhead(policy.name, policy.max_concurrency, policy.max_wait)
        self.breaker = Breaker(policy.name, policy.breaker_threshold, policy.breaker_recovery)

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> httpx2.Response:
        """Send a request through every policy; any answer that is not a transient failure
        (a 404, a 500) is returned as it is. `idempotent=True` lets a POST be retried;
        `deadline` overrides the policy's budget for this call."""
        budget = Deadline(self.policy.deadline if deadline is None else deadline)
        safe = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent

        async def retried() -> httpx2.Response:
            return await self.retried(method, url, budget, safe, kwargs)

        async with budget.enforced(self.name), self.bulkhead.slot(budget):
            return await self.breaker.run(retried)

    async def retried(
        self, method: str, url: str, budget: Deadline, safe: bool, kwargs: dict[str, Any]
    ) -> httpx2.Response:
        retry = retrying(self.policy, budget, safe)
        response: httpx2.Response = await retry(self.attempt, method, url, budget, kwargs)
        return response

    async def attempt(
        self, method: str, url: str, budget: Deadline, kwargs: dict[str, Any]
    ) -> httpx2.Response:
        seconds = min(self.policy.attempt_timeout, budget.remaining())
        started = time.perf_counter()
        try:
            response = await attempt_within(
                self.client.request(method, url, **kwargs), seconds, self.name
            )
        except TRANSIENT_TRANSPORT_ERRORS as error:
            detail = f"unreachable ({type(error).__name__})"
            raise UpstreamUnavailable(self.name, detail) from error
        finally:  # a failed attempt is timed too: a slow refusal is a slow upstream
            record_upstream_latency(self.name, time.perf_counter() - started)
        if response.status_code in TRANSIENT_STATUSES:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            detail = f"answered {response.status_code}"
            raise UpstreamUnavailable(self.name, detail, retry_after=retry_after)
        return response

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET a JSON document: the upstream's 404 is UpstreamNotFound, any other error
        status or a body that is not JSON is a 502."""
        response = await self.request("GET", url, **kwargs)
        if response.status_code == 404:
            raise UpstreamNotFound(self.name, f"{url} was not found")
        if response.is_error:
            raise UpstreamError(self.name, f"answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(self.name, "answered with a body that is not JSON") from None


@asynccontextmanager
async def open_upstream(app: FastAPI, policy: UpstreamPolicy) -> AsyncIterator[Upstream]:
    """An upstream for a lifespan: its client opens now and closes at shutdown, and its
    breaker's state shows in /health/ready."""
    async with create_http_client(policy) as client:
        upstream = Upstream(policy, client)
        register_check(app, f"{policy.name}_breaker", upstream.breaker.check)
        yield upstream
