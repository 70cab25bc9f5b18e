"""Every resilience event goes through these functions, and only these: each writes one
structured log line and updates the event's metric (see /metrics)."""

import logging

from ..observability.metrics import (
    record_breaker_state,
    record_bulkhead_rejection,
    record_retry,
)

logger = logging.getLogger(__name__)


def retry_scheduled(upstream: str, attempt: int, wait: float, reason: str) -> None:
    extra = {"upstream": upstream, "attempt": attempt, "wait_seconds": round(wait, 3)}
    logger.warning("upstream call retried: %s", reason, extra=extra)
    record_retry(upstream)


def breaker_changed(upstream: str, state: str) -> None:
    level = logging.INFO if state == "closed" else logging.WARNING
    logger.log(level, "circuit breaker %s", state, extra={"upstream": upstream, "state": state})
    record_breaker_state(upstream, state)


def bulkhead_rejected(upstream: str, limit: int) -> None:
    logger.warning("bulkhead full", extra={"upstream": upstream, "limit": limit})
    record_bulkhead_rejection(upstream)


def fallback_served(upstream: str, reason: str) -> None:
    logger.warning("fallback served: %s", reason, extra={"upstream": upstream})
