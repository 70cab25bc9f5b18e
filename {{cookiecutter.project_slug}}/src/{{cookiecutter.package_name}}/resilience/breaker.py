"""Circuit breaker (circuitbreaker library): stop calling an upstream that keeps failing.

After `threshold` failed calls in a row the breaker opens: calls fail at once, without touching
the network, which spares the upstream while it recovers and spares our callers the wait.
After `recovery` seconds it is half-open: one probe call goes through (the others still fail
fast); its success closes the breaker, its failure opens it again for another period.
Only transient failures count: a 404 or any other real answer proves the upstream is up.
The library counts any other exception as a success, a cancelled call included; every step
inside the breaker (retry waits, attempts) is bounded by the call's deadline by itself, so the
deadline's own cancellation is only a backstop.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker

from . import events
from .errors import CircuitOpenError
from .retry import is_transient

T = TypeVar("T")


def counts_as_failure(error_type: type[BaseException], error: BaseException) -> bool:
    return is_transient(error)


class Breaker(CircuitBreaker):
    def __init__(self, upstream: str, threshold: int, recovery: float) -> None:
        super().__init__(
            failure_threshold=threshold,
            recovery_timeout=recovery,
            expected_exception=counts_as_failure,
            name=upstream,
        )
        self.upstream = upstream
        self.probing = False

    async def run(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation` unless the breaker is open; its outcome is the breaker's verdict."""
        before = str(self.state)
        if before == STATE_OPEN or (before == STATE_HALF_OPEN and self.probing):
            detail = "failing fast: the circuit breaker is open"
            raise CircuitOpenError(self.upstream, detail, retry_after=self.open_remaining)
        probe = before == STATE_HALF_OPEN
        if probe:
            self.probing = True
            events.breaker_changed(self.upstream, STATE_HALF_OPEN)
        try:
            result: T = await self.call_async(operation)
            return result
        finally:
            if probe:
                self.probing = False
            after = str(self.state)
            if after != before and after in (STATE_OPEN, STATE_CLOSED):
                events.breaker_changed(self.upstream, after)

    async def check(self) -> str:
        """For /health/ready: the state, which never makes the instance unready (taking it out
        of rotation would not heal the upstream; the breaker already fails fast)."""
        return str(self.state)
