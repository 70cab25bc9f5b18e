"""A read-through cache in front of an upstream, per process.

- Fresh for `ttl` seconds: answered from memory, no call.
- Single-flight: concurrent misses of one key share one upstream call.
- Serve-stale: when the upstream fails (unavailable, too slow, breaker open, bulkhead full), an
  answer at most `stale_for` seconds past its freshness is served instead, with its age; a 404
  or another real answer is never papered over.
Hits, misses and stale answers are counted on /metrics (`upstream_cache_total`).
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..observability.metrics import record_cache
from . import events
from .fallback import FALLBACK_ERRORS

T = TypeVar("T")


@dataclass(frozen=True)
class Cached(Generic[T]):
    value: T
    age: float  # seconds since the upstream gave it: the `Age` header


class ReadThroughCache(Generic[T]):
    def __init__(self, upstream: str, ttl: float, stale_for: float, max_entries: int = 4096):
        self.upstream, self.ttl, self.stale_for = upstream, ttl, stale_for
        self.max_entries = max_entries
        self.entries: OrderedDict[Hashable, tuple[T, float]] = OrderedDict()  # value, stored at
        self.in_flight: dict[Hashable, asyncio.Future[T]] = {}

    async def get(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> Cached[T]:
        entry = self.entries.get(key)
        age = time.monotonic() - entry[1] if entry else 0.0
        if entry and age < self.ttl:
            record_cache(self.upstream, "hit")
            return Cached(entry[0], age)
        try:
            return Cached(await self.fetch_once(key, call), 0.0)
        except FALLBACK_ERRORS as error:
            age = time.monotonic() - entry[1] if entry else 0.0
            if entry is None or age > self.ttl + self.stale_for:
                raise
            events.fallback_served(error.upstream, error.detail)
            record_cache(self.upstream, "stale")
            return Cached(entry[0], age)

    async def fetch_once(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """The call's answer, stored; callers arriving while it runs wait for the same one.
        Shielded: a caller that gives up does not cancel the others' call."""
        flight = self.in_flight.get(key)
        if flight is None:
            record_cache(self.upstream, "miss")
            flight = asyncio.ensure_future(self.store(key, call))
            self.in_flight[key] = flight
            flight.add_done_callback(lambda done: self.landed(key, done))
        return await asyncio.shield(flight)

    def landed(self, key: Hashable, flight: "asyncio.Future[T]") -> None:
        self.in_flight.pop(key, None)
        if not flight.cancelled():
            flight.exception()  # retrieved, even when every caller gave up waiting

    async def store(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        value = await call()
        self.entries[key] = (value, time.monotonic())
        self.entries.move_to_end(key)
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)  # the least recently stored
        return value
