"""One upstream's resilience policy: where it is, and how patient and how careful to be."""

from dataclasses import dataclass

from ..settings import Settings


@dataclass(frozen=True)
class UpstreamPolicy:
    name: str  # names the breaker, the health check and the log lines
    base_url: str
    connect_timeout: float = 2.0
    attempt_timeout: float = 3.0  # one try, connection and answer included
    deadline: float = 8.0  # the whole call: every try, every wait
    attempts: int = 3
    backoff: float = 0.2  # the first retry waits up to this; the window doubles each time
    backoff_max: float = 2.0
    breaker_threshold: int = 5  # failed calls in a row that open the breaker
    breaker_recovery: float = 30.0  # seconds open before one probe call is let through
    max_concurrency: int = 32  # calls in flight at once (and pooled connections)
    max_wait: float = 1.0  # how long a call may wait for a free slot before failing fast

    @classmethod
    def from_settings(cls, settings: Settings, name: str, base_url: str) -> "UpstreamPolicy":
        """The policy from the UPSTREAM_* settings; `dataclasses.replace` it to differ."""
        return cls(
            name=name,
            base_url=base_url,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            attempt_timeout=settings.upstream_attempt_timeout_seconds,
            deadline=settings.upstream_deadline_seconds,
            attempts=settings.upstream_attempts,
            backoff=settings.upstream_backoff_seconds,
            backoff_max=settings.upstream_backoff_max_seconds,
            breaker_threshold=settings.upstream_breaker_threshold,
            breaker_recovery=settings.upstream_breaker_recovery_seconds,
            max_concurrency=settings.upstream_max_concurrency,
            max_wait=settings.upstream_max_wait_seconds,
        )
