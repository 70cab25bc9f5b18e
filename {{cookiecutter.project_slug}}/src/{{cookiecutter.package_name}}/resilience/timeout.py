"""Timeouts: one per attempt, and one deadline for the whole call.

A per-attempt timeout alone lets three slow tries and their backoffs add up to far more than
the caller can wait; a deadline alone lets the first slow try eat the whole budget. Both, then:
each attempt gets at most its own timeout and never more than what is left of the deadline.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar

from .errors import DeadlineExceeded, UpstreamTimeout

T = TypeVar("T")


class Deadline:
    """The moment a call must be over by, on the event loop's clock."""

    __slots__ = ("seconds", "when")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.when = asyncio.get_running_loop().time() + seconds

    def remaining(self) -> float:
        return max(0.0, self.when - asyncio.get_running_loop().time())

    @asynccontextmanager
    async def enforced(self, upstream: str) -> AsyncIterator[None]:
        """Cancel whatever is still running when the deadline passes."""
        try:
            async with asyncio.timeout_at(self.when):
                yield
        except TimeoutError:
            detail = f"no answer within the {self.seconds:g}s deadline"
            raise DeadlineExceeded(upstream, detail) from None


async def attempt_within(call: Awaitable[T], seconds: float, upstream: str) -> T:
    """One attempt, given at most `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise UpstreamTimeout(upstream, f"no answer within {seconds:.3g}s") from None
