"""Prometheus metrics on /metrics.

Requests are counted and timed by the one observability middleware (`middleware.py`), straight
on prometheus_client objects: per method (unknown methods folded into "other"), route template
(never the raw path; unmatched paths are grouped as "none") and status class.
prometheus-fastapi-instrumentator serves /metrics (exposition, gzip, multi-process aggregation):
`Instrumentator().expose(...)` in main.py.

Several workers: `python -m <package>` with WORKERS > 1 points every worker at one
PROMETHEUS_MULTIPROC_DIR (emptied at start) and /metrics adds their files up, so the counters
equal the requests served by all workers. Process metrics (CPU, memory, fds) are
exported with one worker only: prometheus_client cannot aggregate them across processes.
Started as one of several workers some other way (gunicorn, `uvicorn --workers`) without that
directory, each worker would count alone: outside development the service refuses to start.
"""

import logging
import multiprocessing
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter, Gauge, Histogram, multiprocess

from ..settings import ENV_PREFIX, Settings

logger = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "none"  # the instrumentator's name for requests no route matched
# An API answers in milliseconds; the top buckets catch timeouts and slow upstreams.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests served, by method, route template and status class.",
    ["method", "handler", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration in seconds, by method, route template and status class.",
    ["method", "handler", "status"],
    buckets=LATENCY_BUCKETS,
)

# Service metrics, for the resilience and rate-limit modules: call the record_* functions.
UPSTREAM_RETRIES = Counter(
    "upstream_retries_total", "Retried calls to an upstream service.", ["upstream"]
)
UPSTREAM_CACHE = Counter(
    "upstream_cache_total",
    "Answers of an upstream's read-through cache: hit, miss (one upstream call) or stale; "
    "error: its store could not be read or written (the upstream answered).",
    ["upstream", "result"],
)
BREAKER_STATE = Gauge(
    "upstream_circuit_breaker_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open (max over workers).",
    ["upstream"],
    multiprocess_mode="livemax",  # a worker that has stopped no longer counts
)
UPSTREAM_LATENCY = Histogram(
    "upstream_request_duration_seconds",
    "Duration of each attempt to call an upstream (a retried call is several), whatever its "
    "outcome, in seconds.",
    ["upstream"],
    buckets=LATENCY_BUCKETS,
)
BULKHEAD_REJECTIONS = Counter(
    "upstream_bulkhead_rejections_total",
    "Calls refused because the upstream's concurrency limit was full.",
    ["upstream"],
)
RATE_LIMITED = Counter(
    "http_rate_limited_total", "Requests refused with 429 by the rate limiter.", ["limit"]
)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def record_retry(upstream: str) -> None:
    UPSTREAM_RETRIES.labels(upstream).inc()


def record_upstream_latency(upstream: str, seconds: float) -> None:
    UPSTREAM_LATENCY.labels(upstream).observe(seconds)


def record_cache(upstream: str, result: str) -> None:
    UPSTREAM_CACHE.labels(upstream, result).inc()


def record_breaker_state(upstream: str, state: str) -> None:
    BREAKER_STATE.labels(upstream).set(BREAKER_VALUES[state])


def record_bulkhead_rejection(upstream: str) -> None:
    BULKHEAD_REJECTIONS.labels(upstream).inc()


def record_rate_limited(limit: str = "default") -> None:
    RATE_LIMITED.labels(limit).inc()


class RequestMetrics:
    """Counts and times requests; each label set's children are looked up once, then cached."""

    def __init__(self) -> None:
        self.children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str | None, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"  # bounded label values
        key = (method, route or UNMATCHED_ROUTE, status // 100)
        children = self.children.get(key)
        if children is None:
            children = self.children[key] = self.children_for(*key)
        children[0].inc()
        children[1].observe(seconds)

    @staticmethod
    def children_for(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        status_class = STATUS_CLASSES[status] if 0 <= status < 6 else "other"
        labels = (method, route, status_class)
        return REQUESTS.labels(*labels), LATENCY.labels(*labels)


def prepare_multiprocess_dir(settings: Settings) -> None:
    """Before the workers start: one shared, empty directory for their metric files.

    Stale files from an earlier run would be added to the new counters, so they are removed
    (only *.db files: the directory may be one the operator chose).
    """
    if settings.workers == 1 and MULTIPROC_DIR not in os.environ:
        return
    package = __name__.split(".")[0]
    default = Path(tempfile.gettempdir()) / f"{package}-metrics-{settings.port}"
    directory = Path(os.environ.get(MULTIPROC_DIR) or default)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_DIR] = str(directory)


def metrics_auth(settings: Settings) -> list[Any]:
    """With METRICS_TOKEN set, /metrics wants `Authorization: Bearer <token>`."""
    expected = settings.metrics_token.get_secret_value().encode()
    if not expected:
        return []
    bearer = HTTPBearer(auto_error=False)

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not secrets.compare_digest(given, expected):
            challenge = {"WWW-Authenticate": "Bearer"}
            raise HTTPException(401, "A valid bearer token is required.", challenge)

    return [Depends(require_token)]


def supervisor() -> str | None:
    """What started this process as one of its workers, when it can tell: gunicorn (its master
    sets SERVER_SOFTWARE=gunicorn/<version> in the environment its workers inherit), or a
    multiprocessing parent (`uvicorn --workers` and `--reload`, `hypercorn --workers`)."""
    if os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return "gunicorn"
    if multiprocessing.parent_process() is not None:
        return "a process manager (uvicorn --workers or --reload, hypercorn --workers)"
    return None


def refuse_unshared_metrics(settings: Settings) -> None:
    """Outside development, a worker without PROMETHEUS_MULTIPROC_DIR does not start: its
    /metrics would count only its own requests, and a scrape would see a random worker's.
    Development is spared: `make run` serves with reload (`--reload`), a spawned child too.
    Refused at the lifespan's start, not at import: a failed start-up is what uvicorn's process
    manager and gunicorn take as final (they stop, where they would restart a crashed worker)."""
    if settings.environment == "development" or MULTIPROC_DIR in os.environ:
        return
    started_by = supervisor()
    if started_by is None:
        return
    package = __name__.split(".")[0]
    message = (
        f"ERROR: started as a worker by {started_by} without {MULTIPROC_DIR}: each worker's "
        f"/metrics would count only its own requests. Set {MULTIPROC_DIR} to an empty "
        f"directory for the workers to share, or start with `python -m {package}` and "
        f"{ENV_PREFIX}WORKERS"
    )
    logger.error(message)
    raise RuntimeError(message)


@asynccontextmanager
async def worker_metrics(settings: Settings) -> AsyncIterator[None]:
    """For the lifespan: refuses to start a worker whose metrics nobody would add up; when this
    worker stops, its live gauges (the breaker states) stop counting in the other workers'
    /metrics."""
    refuse_unshared_metrics(settings)
    try:
        yield
    finally:
        if MULTIPROC_DIR in os.environ:
            multiprocess.mark_process_dead(os.getpid())
