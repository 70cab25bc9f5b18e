"""Resilience for calls to other services (upstreams): retry, circuit breaker, timeouts,
bulkhead and fallback around one pooled HTTP client per upstream.

The client is httpx2 (the maintained continuation of httpx, same API), whose connection pool
keeps its speed with many calls in flight (benchmarks/README.md, resilience).

The policies wrap each call in this order, outermost first:

    deadline -> bulkhead -> circuit breaker -> retry -> per-attempt timeout -> HTTP

- The deadline is outermost so that nothing (a wait for a slot, a backoff, a slow try) outlives
  the caller's budget.
- The bulkhead comes before the breaker so that a call waiting for a slot is not yet a call to
  the upstream: the breaker only judges calls that really went out.
- The breaker is outside the retry so that it counts calls, not attempts: one call that needed
  three tries is one failure, and an open breaker stops the retries too.
- The per-attempt timeout is innermost so that one slow try cannot eat every later one.

Use: open an `Upstream` in a router's lifespan with `open_upstream(app, policy)`, then call
`await upstream.get_json("/path")` or `await upstream.request(...)`. Failures become problem
responses through `upstream_error` (main.py's exception handlers): 503 with Retry-After, 504,
or the upstream's 404.
"""

from .client import Upstream, create_http_client, open_upstream
from .errors import UPSTREAM_RESPONSES, UpstreamError, upstream_error
from .fallback import LastKnownGood, with_fallback
from .policy import UpstreamPolicy

__all__ = [
    "UPSTREAM_RESPONSES",
    "LastKnownGood",
    "Upstream",
    "UpstreamError",
    "UpstreamPolicy",
    "create_http_client",
    "open_upstream",
    "upstream_error",
    "with_fallback",
]
