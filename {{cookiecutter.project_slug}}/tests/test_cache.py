"""The read-through cache on its own: single-flight, a store shared by replicas, a store that
fails (never a failed request)."""

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.resilience.cache import (
    Cached,
    CacheStoreError,
    MemoryStore,
    ReadThroughCache,
)


class Upstream:
    """Counts its calls; answers `answer`, slowly enough for callers to overlap."""

    def __init__(self, answer: Any = "answer") -> None:
        self.answer, self.calls = answer, 0

    async def call(self) -> Any:
        self.calls += 1
        await asyncio.sleep(0.05)
        return self.answer


class BrokenStore:
    """A store whose every read and write fails, as a Redis that is down."""

    async def get(self, key: str) -> bytes | None:
        raise CacheStoreError("down")

    async def set(self, key: str, data: bytes, keep_for: float) -> None:
        raise CacheStoreError("down")


def cache_answers(upstream: str, result: str) -> float:
    labels = {"upstream": upstream, "result": result}
    return REGISTRY.get_sample_value("upstream_cache_total", labels) or 0.0


def test_concurrent_misses_of_one_key_make_one_call() -> None:
    upstream = Upstream()

    async def fifty_at_once() -> list[Cached[str]]:
        cache = ReadThroughCache[str]("test", str, MemoryStore(), ttl=60, stale_for=0)
        return await asyncio.gather(*(cache.get("key", upstream.call) for _ in range(50)))

    answers = asyncio.run(fifty_at_once())
    assert upstream.calls == 1
    assert {answer.value for answer in answers} == {"answer"}


def test_a_caller_that_gives_up_does_not_cancel_the_others_call() -> None:
    async def scenario() -> str:
        cache = ReadThroughCache[str]("test", str, MemoryStore(), ttl=60, stale_for=0)
        started = asyncio.Event()

        async def call() -> str:
            started.set()
            await asyncio.sleep(0.05)
            return "answer"

        impatient = asyncio.create_task(cache.get("key", call))
        await started.wait()
        patient = asyncio.create_task(cache.get("key", call))
        await asyncio.sleep(0)
        impatient.cancel()
        return (await patient).value

    assert asyncio.run(scenario()) == "answer"


def test_replicas_sharing_a_store_make_one_call_and_give_the_same_age() -> None:
    """Two caches on one store, as two replicas on one Redis: the second reads the first's
    answer, whose age counts from when the first fetched it."""
    store, upstream = MemoryStore(), Upstream([1, 2])

    async def scenario() -> tuple[Cached[list[int]], Cached[list[int]]]:
        one, two = (
            ReadThroughCache[list[int]]("test", list[int], store, ttl=60, stale_for=0)
            for _ in range(2)
        )
        first = await one.get(7, upstream.call)
        await asyncio.sleep(0.3)
        return first, await two.get(7, upstream.call)

    first, second = asyncio.run(scenario())
    assert upstream.calls == 1
    assert first == Cached([1, 2], 0.0)
    assert second.value == [1, 2]  # decoded from its JSON as the value type
    assert 0.3 <= second.age < 1


def test_an_entry_is_dropped_once_past_its_freshness_and_stale_window() -> None:
    store = MemoryStore()

    async def scenario() -> tuple[bytes | None, bytes | None]:
        cache = ReadThroughCache[str]("test", str, store, ttl=0.1, stale_for=0.1)
        await cache.get("key", Upstream().call)
        kept = await store.get("test:key")
        await asyncio.sleep(0.25)
        return kept, await store.get("test:key")

    kept, dropped = asyncio.run(scenario())
    assert kept is not None and b'"answer"' in kept
    assert dropped is None


def test_a_failing_store_is_a_miss_counted_as_an_error() -> None:
    upstream, errors = Upstream(), cache_answers("broken", "error")

    async def twice() -> list[Cached[str]]:
        cache = ReadThroughCache[str]("broken", str, BrokenStore(), ttl=60, stale_for=60)
        return [await cache.get("key", upstream.call) for _ in range(2)]

    assert asyncio.run(twice()) == [Cached("answer", 0.0)] * 2
    assert upstream.calls == 2  # each read missed, no request failed
    assert cache_answers("broken", "error") - errors == 4  # two reads, two writes


def test_an_entry_that_no_longer_decodes_is_a_miss() -> None:
    """As after a deploy that changed the value's type: the upstream answers, the entry is
    replaced."""
    store, errors = MemoryStore(), cache_answers("changed", "error")

    async def scenario() -> Cached[int]:
        await store.set("changed:key", b'{"fetched_at": 0, "value": "not a number"}', 60)
        cache = ReadThroughCache[int]("changed", int, store, ttl=60, stale_for=0)
        return await cache.get("key", lambda: asyncio.sleep(0, 42))

    assert asyncio.run(scenario()) == Cached(42, 0.0)
    assert cache_answers("changed", "error") - errors == 1


def test_the_memory_store_keeps_the_most_recently_stored_entries() -> None:
    store = MemoryStore(max_entries=2)

    async def scenario() -> list[bytes | None]:
        for key in ("a", "b", "c"):
            await store.set(key, key.encode(), 60)
        return [await store.get(key) for key in ("a", "b", "c")]

    assert asyncio.run(scenario()) == [None, b"b", b"c"]
