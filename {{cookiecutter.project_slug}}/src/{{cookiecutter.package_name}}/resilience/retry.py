"""Retry (tenacity): only transient failures, only when repeating the call is safe, with
exponential backoff and full jitter, a bounded number of attempts and never past the deadline.

- Transient: the connection failed or was dropped, an attempt timed out, or the upstream
  answered 429/502/503/504. Any other answer (a 4xx, a 500) would come back the same.
- Safe: the method is idempotent (GET, PUT, DELETE...). A POST that timed out may have been
  done; repeating it could do it twice, so it is retried only when the caller says it may be.
- Jitter spreads the retries of many clients that failed at the same moment, so that they do
  not come back at the same moment too.
- A 429 or 503 with Retry-After is retried after that delay, as the upstream asked.
"""

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from . import events
from .errors import UpstreamError
from .policy import UpstreamPolicy
from .timeout import Deadline

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: either delay-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def is_transient(error: BaseException) -> bool:
    return isinstance(error, UpstreamError) and error.transient


class wait_backoff_or_retry_after(wait_base):
    """The upstream's Retry-After when it sent one, else exponential backoff, fully jittered."""

    def __init__(self, first: float, most: float) -> None:
        self.jittered = wait_random_exponential(multiplier=first, max=most)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, UpstreamError) and error.retry_after is not None:
            return error.retry_after
        return float(self.jittered(retry_state))


class stop_at_deadline(stop_base):
    """Stop instead of waiting when the wait would end after the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.upcoming_sleep >= self.deadline.remaining()


def report_retry(upstream: str) -> Callable[[RetryCallState], None]:
    def before_sleep(retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        reason = error.detail if isinstance(error, UpstreamError) else repr(error)
        events.retry_scheduled(
            upstream, retry_state.attempt_number, retry_state.upcoming_sleep, reason
        )

    return before_sleep


def retrying(policy: UpstreamPolicy, deadline: Deadline, safe: bool) -> AsyncRetrying:
    """The retry loop for one call; `safe` is False for a call that must not be repeated."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.attempts if safe else 1) | stop_at_deadline(deadline),
        wait=wait_backoff_or_retry_after(policy.backoff, policy.backoff_max),
        retry=retry_if_exception(is_transient),
        before_sleep=report_retry(policy.name),
        reraise=True,  # the caller sees the last failure itself, not tenacity's RetryError
    )
