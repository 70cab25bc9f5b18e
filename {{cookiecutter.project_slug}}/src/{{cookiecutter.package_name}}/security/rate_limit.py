"""Rate limiting: a default limit on every HTTP route, stricter ones where a route asks.

Counting is done by the `limits` library (what slowapi wraps) through its asynchronous API, so
a shared storage such as Redis never blocks the event loop. slowapi itself is not used: it only
drives limits' synchronous storages, and its decorator needs a `request` argument on every route.

Counters are shared by every process pointing at the same storage URI; in memory they are per
process. When the storage fails, requests go through unchecked (or are refused with 503, if
RATE_LIMIT_FAIL_OPEN is false): logged once per outage, counted (`skipped_checks`), and the
storage is tried again at most once a second. Never a 500.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, HTTPException, Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import Problem, problem
from ..observability.metrics import record_rate_limited
from ..settings import Settings
from .client import TrustedProxies, client_address

logger = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/health/", "/metrics")
ROUTE_LIMITED = "rate_limited_by_route"  # request state: the route's limit set the headers
RETRY_SECONDS = 1.0  # while the storage is down, try it again at most this often
# For a network storage (the redis client): a storage this slow counts as down.
STORAGE_OPTIONS = {"socket_timeout": 0.1, "socket_connect_timeout": 0.1}
UNAVAILABLE = "Rate limits cannot be checked right now; retry shortly."
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": Problem, "description": "Too many requests from this client; see Retry-After"}
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
        self.trusted = TrustedProxies(settings.trusted_proxies)
        self.storage = open_storage(settings.rate_limit_storage_uri)
        self.default = parse(settings.rate_limit_default)
        self.items: dict[str, RateLimitItem] = {}
        self.down = False
        self.retry_at = 0.0
        self.skipped_checks = 0

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

    def client(self, scope: Scope) -> str:
        return client_address(scope, self.trusted)

    async def hit(self, item: RateLimitItem, bucket: str, key: str) -> Verdict | None:
        """Count one request; None when the storage is down and the service fails open."""
        if self.down and time.monotonic() < self.retry_at:
            self.unchecked()
            return None
        counter = item.key_for(self.settings.service_name, bucket, key)
        try:
            count = await self.storage.incr(counter, item.get_expiry())
            reset = await self.storage.get_expiry(counter)
        except StorageError as error:
            self.storage_failed(error.storage_error)
            return None
        if self.down:
            self.down = False
            logger.warning(
                "rate-limit storage is back (%d checks skipped so far)", self.skipped_checks
            )
        return Verdict(count <= item.amount, item.amount, max(0, item.amount - count), int(reset))

    def storage_failed(self, error: Exception) -> None:
        if not self.down:
            action = "letting requests through" if self.settings.rate_limit_fail_open else "503"
            logger.error("rate-limit storage unreachable (%s): %s", type(error).__name__, action)
        self.down = True
        self.retry_at = time.monotonic() + RETRY_SECONDS
        self.unchecked()

    def unchecked(self) -> None:
        self.skipped_checks += 1
        if not self.settings.rate_limit_fail_open:
            raise StorageUnavailable


def too_many(verdict: Verdict, limit: RateLimitItem) -> str:
    return f"Rate limit of {limit} exceeded; retry in {verdict.retry_after()} s."


class RateLimitMiddleware:
    """The default limit, per client address, on every HTTP route but health and metrics.

    Pure ASGI, so that a refused request costs no routing; answers are problems (429, or 503
    while the storage is down and the service fails closed)."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exempt = scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES)
        if exempt or not self.limits.enabled:
            await self.app(scope, receive, send)
            return
        item = self.limits.default
        try:
            verdict = await self.limits.hit(item, "default", self.limits.client(scope))
        except StorageUnavailable:
            response = problem(Request(scope), 503, UNAVAILABLE, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            record_rate_limited("default")
            detail = too_many(verdict, item)
            response = problem(Request(scope), 429, detail, headers=verdict.headers())
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        headers = [
            (name.lower().encode(), value.encode()) for name, value in verdict.headers().items()
        ]

        async def send_with_headers(message: Message) -> None:
            # A route with its own (stricter) limit has sent its headers already: they win.
            if message["type"] == "http.response.start" and ROUTE_LIMITED not in state:
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def get_rate_limits(request: Request) -> RateLimits:
    """The service's counters, from the lifespan (main.py)."""
    limits: RateLimits = request.state.rate_limits
    return limits


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


def rate_limit(setting: str) -> Callable[[Request, Response, RateLimits], Awaitable[None]]:
    """A per-route limit taken from a setting, as a dependency:
    `@router.post(..., dependencies=[Depends(rate_limit("rate_limit_write"))])`.

    It counts per principal when authentication has set `request.state.principal` (list it
    after the auth dependency), else per client address; each setting is its own bucket.
    """
    if setting not in Settings.model_fields:
        raise ValueError(f"rate_limit({setting!r}): no such setting")

    async def check_rate_limit(
        request: Request, response: Response, limits: RateLimitsDep
    ) -> None:
        if not limits.enabled:
            return
        principal = getattr(request.state, "principal", None)
        key = f"principal:{principal}" if principal else limits.client(request.scope)
        item = limits.item(setting)
        try:
            verdict = await limits.hit(item, setting, key)
        except StorageUnavailable:
            raise HTTPException(503, UNAVAILABLE, headers={"Retry-After": "1"}) from None
        if verdict is None:
            return
        setattr(request.state, ROUTE_LIMITED, True)
        if not verdict.allowed:
            record_rate_limited(setting)
            raise HTTPException(429, too_many(verdict, item), headers=verdict.headers())
        response.headers.update(verdict.headers())

    return check_rate_limit
