"""A read-through cache in front of an upstream.

- Fresh for `ttl` seconds: answered from the store, no call.
- Single-flight, per process: concurrent misses of one key share one upstream call. With a
  store shared by N replicas, a cold key costs at most N calls, one per process.
- Serve-stale: when the upstream fails (unavailable, too slow, breaker open, bulkhead full), an
  answer at most `stale_for` seconds past its freshness is served instead, with its age; a 404
  or another real answer is never papered over.
- The store holds each answer as JSON with the wall-clock time it was fetched, so every replica
  reading it gives the same `Age`, and drops it after `ttl + stale_for`. `MemoryStore` is this
  process's; a shared store (Redis) lets every replica serve what one fetched.
{%- if cookiecutter.include_examples %} The characters
  example picks its store from CACHE_URL (api/characters.py; Redis's is cache_redis.py).
{%- endif %}
- A store that fails (down, too slow, an entry that no longer decodes) never fails a request:
  the read is a miss and the upstream answers.
Hits, misses (one upstream call each), stale answers and store failures are counted on /metrics
(`upstream_cache_total{result="hit|miss|stale|error"}`).
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter
from pydantic_core import from_json, to_json

from ..observability.metrics import record_cache
from . import events
from .fallback import FALLBACK_ERRORS

T = TypeVar("T")


class CacheStoreError(Exception):
    """The store could not be read or written (down, too slow): the cache carries on without."""


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, data: bytes, keep_for: float) -> None: ...


class MemoryStore:
    """This process's entries; beyond `max_entries`, the least recently stored is dropped."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # data, expiry

    async def get(self, key: str) -> bytes | None:
        entry = self.entries.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    async def set(self, key: str, data: bytes, keep_for: float) -> None:
        self.entries[key] = (data, time.monotonic() + keep_for)
        self.entries.move_to_end(key)
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


@dataclass(frozen=True)
class Cached(Generic[T]):
    value: T
    age: float  # seconds since the upstream gave it: the `Age` header


class ReadThroughCache(Generic[T]):
    """`value_type` is T itself (e.g. `Model | None`): how answers are stored as JSON."""

    def __init__(
        self, upstream: str, value_type: Any, store: CacheStore, ttl: float, stale_for: float
    ) -> None:
        self.upstream, self.store, self.ttl, self.stale_for = upstream, store, ttl, stale_for
        self.values: TypeAdapter[T] = TypeAdapter(value_type)
        self.in_flight: dict[str, asyncio.Future[T]] = {}

    async def get(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> Cached[T]:
        name = f"{self.upstream}:{key}"
        entry = await self.read(name)
        if entry and age(entry) < self.ttl:
            record_cache(self.upstream, "hit")
            return Cached(entry[0], age(entry))
        try:
            return Cached(await self.fetch_once(name, call), 0.0)
        except FALLBACK_ERRORS as error:
            if entry is None or age(entry) > self.ttl + self.stale_for:
                raise
            events.fallback_served(error.upstream, error.detail)
            record_cache(self.upstream, "stale")
            return Cached(entry[0], age(entry))

    async def fetch_once(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        """The call's answer, stored; callers arriving while it runs wait for the same one.
        Shielded: a caller that gives up does not cancel the others' call."""
        flight = self.in_flight.get(name)
        if flight is None:
            record_cache(self.upstream, "miss")
            flight = asyncio.ensure_future(self.fetch(name, call))
            self.in_flight[name] = flight
            flight.add_done_callback(lambda done: self.landed(name, done))
        return await asyncio.shield(flight)

    def landed(self, name: str, flight: "asyncio.Future[T]") -> None:
        self.in_flight.pop(name, None)
        if not flight.cancelled():
            flight.exception()  # retrieved, even when every caller gave up waiting

    async def fetch(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        value = await call()
        keep_for = self.ttl + self.stale_for
        if keep_for > 0:
            await self.write(name, value, keep_for)
        return value

    async def read(self, name: str) -> tuple[T, float] | None:
        """The stored answer and when it was fetched; None when absent or unreadable."""
        try:
            data = await self.store.get(name)
            if data is None:
                return None
            stored = from_json(data)
            return self.values.validate_python(stored["value"]), float(stored["fetched_at"])
        except (CacheStoreError, ValueError, KeyError, TypeError):  # ValueError: bad JSON too
            record_cache(self.upstream, "error")
            return None

    async def write(self, name: str, value: T, keep_for: float) -> None:
        answer = self.values.dump_python(value, mode="json")
        data = to_json({"fetched_at": time.time(), "value": answer})
        try:
            await self.store.set(name, data, keep_for)
        except CacheStoreError:
            record_cache(self.upstream, "error")


def age(entry: tuple[Any, float]) -> float:
    """Seconds since the entry was fetched, by the wall clock every replica shares."""
    return max(0.0, time.time() - entry[1])
