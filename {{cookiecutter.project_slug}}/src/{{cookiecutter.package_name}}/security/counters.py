"""Where the rate-limit counters live: slowapi's Limiter, built from the settings.

The Limiter makes the `limits` storage from RATE_LIMIT_STORAGE_URI and the fixed-window
strategy over it. Those storages are synchronous: a call blocks the event loop for one round
trip, so network storages get short timeouts and a slow one counts as down.
"""

import time
from collections.abc import Callable

from fastapi import Request
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from slowapi import Limiter

from ..settings import Settings

# Passed to the storage's client (redis.from_url); the in-memory storage ignores them.
STORAGE_OPTIONS = {"socket_timeout": 0.1, "socket_connect_timeout": 0.1}
SWEEP_SECONDS = 60.0


class MemoryCounters(MemoryStorage):
    """limits' in-memory storage without its expiry thread, which starts every 10 ms under
    load and fights the event loop for the GIL: stale counters are reset when hit again, and
    swept inline once a minute. Used from the event loop only, so no locks."""

    next_sweep = 0.0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if now >= self.next_sweep:
            self.sweep(now)
        if self.expirations.get(key, 0.0) <= now:
            self.storage[key] = 0
            self.expirations[key] = now + expiry
        self.storage[key] += amount
        return self.storage[key]

    def sweep(self, now: float) -> None:
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.clear(key)
        self.next_sweep = now + SWEEP_SECONDS


def build_limiter(settings: Settings, key_func: Callable[[Request], str]) -> Limiter:
    limiter = Limiter(
        key_func=key_func,  # for slowapi's own decorators, should a route use one
        default_limits=[settings.rate_limit_default],
        headers_enabled=True,
        strategy="fixed-window",
        storage_uri=settings.rate_limit_storage_uri,
        storage_options=STORAGE_OPTIONS,  # type: ignore[arg-type]  # typed as str only
        key_prefix=settings.service_name,
    )
    if settings.rate_limit_storage_uri.startswith("memory://"):
        # slowapi has no setter for its storage: swap in the thread-free one.
        limiter._storage = MemoryCounters()
        limiter._limiter = FixedWindowRateLimiter(limiter._storage)
    return limiter
