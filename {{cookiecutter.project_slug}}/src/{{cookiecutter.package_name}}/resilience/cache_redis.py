"""The read-through cache's entries in Redis, when CACHE_URL names one.

`redis://` (or `rediss://`, TLS) is a Redis shared by every replica, so an answer fetched by one
is served by all (`memory://`, this process's memory, needs nothing from here: the characters'
router imports this module, and redis with it, only for a Redis URL). Keys are
`<package>:cache:<upstream>:<key>` and expire when no longer servable (the cache's ttl + stale
window).

Redis is never in a request's way for long: its client waits at most TIMEOUT_SECONDS and tries
once. When it fails, reads are misses and writes are skipped (the upstream answers), logged
once per outage, and Redis is tried again at most once every RETRY_SECONDS.
"""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .cache import CacheStore, CacheStoreError

logger = logging.getLogger(__name__)

NAMESPACE = "{{ cookiecutter.package_name }}:cache:"
TIMEOUT_SECONDS = 0.25  # a Redis on the same network answers in about a millisecond
RETRY_SECONDS = 1.0  # while Redis is down, try it again at most this often


class RedisStore:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self.down = False
        self.retry_at = 0.0

    async def get(self, key: str) -> bytes | None:
        async with self.reaching():
            data: bytes | None = await self.client.get(NAMESPACE + key)
        return data

    async def set(self, key: str, data: bytes, keep_for: float) -> None:
        async with self.reaching():
            await self.client.set(NAMESPACE + key, data, px=max(1, round(keep_for * 1000)))

    @asynccontextmanager
    async def reaching(self) -> AsyncIterator[None]:
        """Runs one command, or refuses at once while Redis is known to be down."""
        if self.down and time.monotonic() < self.retry_at:
            raise CacheStoreError("Redis is down")
        try:
            yield
        except (RedisError, OSError) as error:  # OSError: TimeoutError, refused connections
            if not self.down:
                logger.warning("cache store unreachable, the upstream answers: %r", error)
            self.down, self.retry_at = True, time.monotonic() + RETRY_SECONDS
            raise CacheStoreError("Redis is down") from error
        if self.down:
            self.down = False
            logger.info("cache store reachable again")


@asynccontextmanager
async def open_redis_store(url: str) -> AsyncIterator[CacheStore]:
    """The store for a redis:// or rediss:// CACHE_URL, for a lifespan: closed on the way out."""
    # No retries: a second try would only double the wait of a request Redis already failed.
    client = Redis.from_url(
        url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        yield RedisStore(client)
    finally:
        await client.aclose()
