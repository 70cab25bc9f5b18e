"""Rate limiting: a default limit on every HTTP route, stricter ones where a route asks.

Counting is done by the `limits` library (what slowapi wraps) through its asynchronous API, so
a shared storage such as Redis never blocks the event loop. slowapi itself is not used: it only
drives limits' synchronous storages, and its decorator needs a `request` argument on every route.

The default limit comes with the route class every router is given,
`APIRouter(route_class=RateLimitedRoute)` (FastAPI's documented hook for a custom route): it
wraps each route's handler, outside the dependency graph, because it runs on every request.
A route adds a stricter limit of its own as a dependency, `Depends(rate_limit("<setting>"))`.
Both run once the route is known, so a refusal is counted under its route in the metrics
(tests/test_rate_limit.py fails for a route left without the class). A refusal is a 429
problem with Retry-After; every answer carries X-RateLimit-Limit, -Remaining and -Reset, errors
included (but a body refused before any limit counted it: not UTF-8, over MAX_BODY_BYTES).
FastAPI runs a route's dependencies before it validates the route's own parameters: a route
limit given `after=` a dependency taking the body counts only requests whose body is valid.

Counters are shared by every process pointing at the same storage URI; in memory they are per
process. When the storage fails (not merely slow: its client waits STORAGE_TIMEOUT_SECONDS),
the counting goes on per process in memory (or requests are refused with 503, if
RATE_LIMIT_FAIL_OPEN is false): logged once per outage, counted (`fallback_checks`), and the
storage is tried again at most once a second. Never a 500, never unlimited.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.requests import HTTPConnection

from ..errors import Problem
from ..observability.metrics import record_rate_limited
from ..settings import Settings
from .client import TrustedProxies, client_address

logger = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/health/", "/metrics")
RETRY_SECONDS = 1.0  # while the storage is down, try it again at most this often
# For a network storage (the redis client): slower than this, it counts as down.
STORAGE_TIMEOUT_SECONDS = 2.0
STORAGE_OPTIONS = {
    "socket_timeout": STORAGE_TIMEOUT_SECONDS,
    "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
}
UNAVAILABLE = "Rate limits cannot be checked right now; retry shortly."


def header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer"}}


# What a limited route documents: the 429 problem and its headers.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "Too many requests from this client",
        "headers": {
            "Retry-After": header("Seconds until the limit resets"),
            "X-RateLimit-Limit": header("Requests allowed in the window"),
            "X-RateLimit-Remaining": header("Requests left in the window"),
            "X-RateLimit-Reset": header("When the window ends, in seconds since the epoch"),
        },
    }
}


class StorageUnavailable(Exception):
    """The counters cannot be read and the service is set to fail closed."""


class Verdict(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset: int  # when the window ends, in seconds since the epoch

    def retry_after(self) -> int:
        return max(1, self.reset - int(time.time()))

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after())
        return headers


def open_storage(uri: str) -> Storage:
    """limits' asynchronous storage for a URI such as memory:// or redis://host:6379/0."""
    if uri.startswith("memory://"):
        return MemoryStorage()
    scheme = uri if uri.startswith("async+") else f"async+{uri}"
    storage = storage_from_string(
        scheme, implementation="redispy", wrap_exceptions=True, **STORAGE_OPTIONS
    )
    assert isinstance(storage, Storage)  # nosec B101: an async+ URI gives an async storage
    return storage


class RateLimits:
    """The counters, and what to do when their storage is down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.rate_limit_enabled
        self.trusted = TrustedProxies(settings.trusted_proxies, settings.forwarded_header)
        self.storage = open_storage(settings.rate_limit_storage_uri)
        self.fallback = MemoryStorage()  # this process's counters while the storage is down
        self.items: dict[str, RateLimitItem] = {}
        self.down = False
        self.retry_at = 0.0
        self.fallback_checks = 0
        # Clients repeat: each counter's storage key is built once.
        self.counter = lru_cache(maxsize=4096)(self.compute_counter)

    @asynccontextmanager
    async def running(self) -> AsyncIterator["RateLimits"]:
        """For the lifespan: warns when several workers each keep their own counters."""
        if self.enabled and self.settings.workers > 1 and isinstance(self.storage, MemoryStorage):
            logger.warning(
                "in-memory rate limits are per worker: %d workers multiply them; "
                "point RATE_LIMIT_STORAGE_URI at a shared storage",
                self.settings.workers,
            )
        yield self

    def item(self, setting: str) -> RateLimitItem:
        """The limit a setting names, parsed once."""
        if setting not in self.items:
            self.items[setting] = parse(getattr(self.settings, setting))
        return self.items[setting]

    def compute_counter(self, setting: str, bucket: str, key: str) -> str:
        return self.item(setting).key_for(self.settings.service_name, bucket, key)

    def client(self, connection: HTTPConnection) -> str:
        return client_address(connection.scope, self.trusted)

    async def hit(self, item: RateLimitItem, counter: str) -> Verdict:
        """Count one request: in the storage, or in memory while the storage is down."""
        if not self.down or time.monotonic() >= self.retry_at:
            try:
                verdict = await self.count(self.storage, item, counter)
            except StorageError as error:
                self.storage_failed(error.storage_error)
            else:
                if self.down:
                    self.down = False
                    logger.warning(
                        "rate-limit storage is back (%d checks counted in memory meanwhile)",
                        self.fallback_checks,
                    )
                return verdict
        if not self.settings.rate_limit_fail_open:
            raise StorageUnavailable
        self.fallback_checks += 1
        return await self.count(self.fallback, item, counter)

    @staticmethod
    async def count(storage: Storage, item: RateLimitItem, counter: str) -> Verdict:
        count = await storage.incr(counter, item.get_expiry())
        reset = await storage.get_expiry(counter)
        return Verdict(count <= item.amount, item.amount, max(0, item.amount - count), int(reset))

    def storage_failed(self, error: Exception) -> None:
        if not self.down:
            action = "counting in memory" if self.settings.rate_limit_fail_open else "503"
            # A dependency down: expected now and then, a warning (an error pages someone).
            logger.warning("rate-limit storage unreachable (%s): %s", type(error).__name__, action)
        self.down = True
        self.retry_at = time.monotonic() + RETRY_SECONDS

    async def enforce(
        self, setting: str, bucket: str, key: str, connection: HTTPConnection, response: Response
    ) -> None:
        """One hit against a setting's limit: the headers on `response` (and in the state, for
        an error answered later: errors.py), or a 429 / 503."""
        headers = await self.check(setting, bucket, key)
        response.headers.update(headers)  # a later, stricter limit's replace these
        connection.state.rate_limit_headers = headers

    async def check(self, setting: str, bucket: str, key: str) -> dict[str, str]:
        """One hit against a setting's limit: the headers for the answer, or a 429 / 503."""
        item = self.item(setting)
        try:
            verdict = await self.hit(item, self.counter(setting, bucket, key))
        except StorageUnavailable:
            raise HTTPException(503, UNAVAILABLE, headers={"Retry-After": "1"}) from None
        if not verdict.allowed:
            record_rate_limited(bucket)
            detail = f"Rate limit of {item} exceeded; retry in {verdict.retry_after()} s."
            raise HTTPException(429, detail, headers=verdict.headers())
        return verdict.headers()


async def get_rate_limits(connection: HTTPConnection) -> RateLimits:
    """The service's counters, from the lifespan (main.py)."""
    limits: RateLimits = connection.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


class RateLimitedRoute(APIRoute):
    """A route counted against RATE_LIMIT_DEFAULT per client address, unless its path is under
    health or metrics (WebSocket routes are not APIRoutes: their handshakes are not counted).

    The count wraps the handler FastAPI builds (`get_route_handler`, the documented hook):
    before the route's dependencies, as an app-level dependency would run, at a fraction of
    a dependency's cost. Its headers join the answer unless a route limit set its own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited_handler(request: Request) -> Response:
            limits: RateLimits = request.state.rate_limits  # the lifespan's (main.py)
            if not limits.enabled or request.scope["path"].startswith(EXEMPT_PREFIXES):
                return await handler(request)
            key = limits.client(request)
            headers = await limits.check("rate_limit_default", "default", key)
            request.state.rate_limit_headers = headers  # for an error answered later: errors.py
            response = await handler(request)
            answer = response.headers
            if "x-ratelimit-limit" not in answer:  # a route limit's are stricter: kept
                for name, value in headers.items():
                    answer.append(name, value)
            return response

        return limited_handler


async def nothing_first() -> None:
    """No dependency has to pass before a request is counted."""


def rate_limit(
    setting: str, after: Callable[..., Awaitable[None]] = nothing_first
) -> Callable[..., Awaitable[None]]:
    """A per-route limit taken from a setting, as a dependency:
    `@router.post(..., dependencies=[Depends(rate_limit("rate_limit_write"))])`.

    It counts per principal when authentication has set `request.state.principal` (list it
    after the auth dependency), else per client address; each setting is its own bucket.
    `after` is a dependency that must pass before the request is counted, such as
    `async def valid_order(order: OrderIn) -> None` taking the route's body under the
    route's name for it: a request refused with a 422 then costs nothing.
    """
    if setting not in Settings.model_fields:
        raise ValueError(f"rate_limit({setting!r}): no such setting")

    async def check_rate_limit(
        connection: HTTPConnection,
        response: Response,
        limits: RateLimitsDep,
        passed: Annotated[None, Depends(after)],
    ) -> None:
        if not limits.enabled:
            return
        principal = getattr(connection.state, "principal", None)
        key = f"principal:{principal}" if principal else limits.client(connection)
        await limits.enforce(setting, setting, key, connection, response)

    return check_rate_limit
