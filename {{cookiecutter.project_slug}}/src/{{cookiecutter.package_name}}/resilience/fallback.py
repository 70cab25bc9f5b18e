"""Fallback: an answer for when the upstream cannot give one, from a default or from the last
good answer. Only for failures (unavailable, too slow, breaker open, bulkhead full): a 404 or
another real answer from the upstream is passed on, never papered over.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from . import events
from .errors import UpstreamTimeout, UpstreamUnavailable

T = TypeVar("T")
FALLBACK_ERRORS = (UpstreamUnavailable, UpstreamTimeout)


async def with_fallback(call: Awaitable[T], default: T) -> T:
    """The call's result, or `default` when the upstream failed."""
    try:
        return await call
    except FALLBACK_ERRORS as error:
        events.fallback_served(error.upstream, error.detail)
        return default


class LastKnownGood(Generic[T]):
    """Remembers the last good answer for each key (up to `max_entries`, least recently used
    dropped first) and serves it when a later call for that key fails."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self.values: OrderedDict[Hashable, T] = OrderedDict()

    async def get(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await call()
        except FALLBACK_ERRORS as error:
            if key not in self.values:
                raise
            events.fallback_served(error.upstream, error.detail)
            return self.values[key]
        self.values[key] = value
        self.values.move_to_end(key)
        if len(self.values) > self.max_entries:
            self.values.popitem(last=False)
        return value
