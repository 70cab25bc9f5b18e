"""Bulkhead: a bound on the calls in flight to one upstream.

When an upstream slows down, calls to it pile up and hold connections, memory and event-loop
time that every other route needs. A bounded number of slots keeps the damage in one
compartment: a call waits a little for a free slot, then fails fast with a 503.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from . import events
from .errors import BulkheadFullError
from .timeout import Deadline


class Bulkhead:
    def __init__(self, upstream: str, limit: int, max_wait: float) -> None:
        self.upstream = upstream
        self.limit = limit
        self.max_wait = max_wait
        self.slots = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def slot(self, deadline: Deadline) -> AsyncIterator[None]:
        if self.slots.locked():
            try:
                async with asyncio.timeout(min(self.max_wait, deadline.remaining())):
                    await self.slots.acquire()
            except TimeoutError:
                events.bulkhead_rejected(self.upstream, self.limit)
                detail = f"more than {self.limit} calls in flight"
                raise BulkheadFullError(self.upstream, detail, retry_after=1) from None
        else:
            await self.slots.acquire()  # a free slot: returns at once, no timer needed
        try:
            yield
        finally:
            self.slots.release()
