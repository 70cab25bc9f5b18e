"""Rate limiting: a default limit on every HTTP route, stricter ones where a route asks.

slowapi's Limiter holds the configuration: the storage from the URI, the fixed-window strategy
over it, the key prefix, and the key function its own decorators would use. The hit itself is
made here, from a pure ASGI middleware and a small dependency: slowapi's decorator and
middleware build a Request and call inspect.signature on every hit (about 40% of throughput).

Counters are shared by every process pointing at the same storage URI; in memory they are per
process. When the storage fails, requests go through unchecked (or are refused with 503, if
RATE_LIMIT_FAIL_OPEN is false): logged once per outage, counted (`skipped_checks`), and
the storage is tried again at most once a second. Never a 500.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import Problem, problem
from ..observability.metrics import record_rate_limited
from ..settings import Settings
from .client import TrustedProxies, client_address
from .counters import build_limiter

logger = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/health/", "/metrics")
ROUTE_LIMITED = "rate_limited_by_route"  # request state: the route's limit set the headers
RETRY_SECONDS = 1.0  # while the storage is down, try it again at most this often


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

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset),
        ]


class RateLimits:
    """The counters, and what to do when their storage is down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trusted = TrustedProxies(settings.trusted_proxies)
        self.limiter = build_limiter(settings, self.request_key)
        self.storage = self.limiter.limiter.storage
        self.items: dict[str, RateLimitItem] = {}
        self.prefixes: dict[str, str] = {}
        self.down = False
        self.retry_at = 0.0
        self.skipped_checks = 0

    def request_key(self, request: Request) -> str:
        return client_address(request.scope, self.trusted)

    def item(self, setting: str) -> RateLimitItem:
        if setting not in self.items:
            self.items[setting] = parse(getattr(self.settings, setting))
        return self.items[setting]

    def hit(self, item: RateLimitItem, bucket: str, key: str) -> Verdict | None:
        """Count one request; None when the storage is down and the service fails open."""
        if self.down and time.monotonic() < self.retry_at:
            self.unchecked()
            return None
        if bucket not in self.prefixes:  # limits' key_for, minus its per-hit string work
            self.prefixes[bucket] = item.key_for(self.settings.service_name, bucket)
        counter = f"{self.prefixes[bucket]}/{key}"
        try:
            count = self.storage.incr(counter, item.get_expiry())
            reset = self.storage.get_expiry(counter)
        except Exception as exc:  # any storage failure: connection, timeout, protocol
            self.storage_failed(exc)
            return None
        if self.down:
            self.down = False
            logger.warning(
                "rate-limit storage is back (%d checks skipped so far)", self.skipped_checks
            )
        return Verdict(count <= item.amount, item.amount, max(0, item.amount - count), int(reset))

    def storage_failed(self, exc: Exception) -> None:
        if not self.down:
            action = "letting requests through" if self.settings.rate_limit_fail_open else "503"
            logger.error("rate-limit storage unreachable (%s): %s", type(exc).__name__, action)
        self.down = True
        self.retry_at = time.monotonic() + RETRY_SECONDS
        self.unchecked()

    def unchecked(self) -> None:
        self.skipped_checks += 1
        if not self.settings.rate_limit_fail_open:
            raise StorageUnavailable


def too_many(verdict: Verdict, limit: RateLimitItem) -> str:
    return f"Rate limit of {limit} exceeded; retry in {verdict.retry_after()} s."


UNAVAILABLE = "Rate limits cannot be checked right now; retry shortly."


class RateLimitMiddleware:
    """The default limit, per client address, on every HTTP route but health and metrics."""

    def __init__(self, app: ASGIApp, limits: RateLimits, item: RateLimitItem) -> None:
        self.app = app
        self.limits = limits
        self.item = item

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        key = client_address(scope, self.limits.trusted)
        try:
            verdict = self.limits.hit(self.item, "default", key)
        except StorageUnavailable:
            response = problem(Request(scope), 503, UNAVAILABLE, headers={"Retry-After": "1"})
            await response(scope, receive, send)
            return
        if verdict is None:
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            detail = too_many(verdict, self.item)
            record_rate_limited("default")
            response = problem(Request(scope), 429, detail, headers=verdict.headers())
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            # A route with its own (stricter) limit has sent its headers already: they win.
            if message["type"] == "http.response.start" and ROUTE_LIMITED not in state:
                message["headers"] = [*message.get("headers", ()), *verdict.raw_headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def rate_limit(setting: str) -> Callable[[Request, Response], Awaitable[None]]:
    """A per-route limit taken from a setting, as a dependency:
    `@router.post(..., dependencies=[Depends(rate_limit("rate_limit_write"))])`.

    It counts per principal when authentication has set `request.state.principal` (list it
    after the auth dependency), else per client address; each setting is its own bucket.
    """
    if setting not in Settings.model_fields:
        raise ValueError(f"rate_limit({setting!r}): no such setting")

    async def check_rate_limit(request: Request, response: Response) -> None:
        limits: RateLimits | None = request.app.state.rate_limits
        if limits is None:
            return  # rate limiting is off
        principal = request.scope.get("state", {}).get("principal")
        if principal:
            key = f"principal:{principal}"
        else:
            key = client_address(request.scope, limits.trusted)
        item = limits.item(setting)
        try:
            verdict = limits.hit(item, setting, key)
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


def document_429(app: FastAPI) -> None:
    """The 429 in the OpenAPI document: on the app's own routes (the API's: health, metrics and
    docs are exempt, or outside the schema) and on every route added later."""
    too_many_requests = {"model": Problem, "description": "Too many requests from this client"}
    for route in app.router.routes:
        if isinstance(route, APIRoute) and not route.path.startswith(EXEMPT_PREFIXES):
            route.responses = {**route.responses, 429: too_many_requests}  # a copy: see api/
    app.router.responses = {**app.router.responses, 429: too_many_requests}


def install_rate_limiting(app: FastAPI, settings: Settings) -> None:
    app.state.rate_limits = None
    if not settings.rate_limit_enabled:
        return
    limits = RateLimits(settings)
    app.state.rate_limits = limits
    app.state.limiter = limits.limiter  # where slowapi's own decorators look for it
    document_429(app)
    if settings.workers > 1 and isinstance(limits.storage, MemoryStorage):
        logger.warning(
            "in-memory rate limits are per worker: %d workers multiply them; "
            "point RATE_LIMIT_STORAGE_URI at a shared storage",
            settings.workers,
        )
    app.add_middleware(RateLimitMiddleware, limits=limits, item=parse(settings.rate_limit_default))
