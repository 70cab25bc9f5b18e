"""/api/v1/primes: an example of CPU-heavy work kept off the event loop.

`GET /primes/{n}` computes the n-th prime in a process pool set up by this router's lifespan
and opened by the first job (CPU_WORKERS processes), so the event loop keeps serving every other
request meanwhile. At most CPU_MAX_QUEUED jobs wait for a process; beyond that a request gets a
503 problem with Retry-After at once, rather than a queue that only grows. CPU_WORKERS=0 runs the
jobs in a thread instead (where processes cannot be started, e.g. AWS Lambda): off the loop, but
sharing the interpreter's lock with it.

The route also shows FastAPI's `BackgroundTasks`: a log line written after the response is sent.
Use them for fire-and-forget work whose loss is harmless (they run in this process, after the
response, and die with it); anything that must not be lost belongs in a queue.
"""

import asyncio
import logging
import multiprocessing
import signal
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Path, Request
from pydantic import BaseModel

from ..domain.primes import MAX_N, nth_prime
from ..errors import Problem
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute
from ..settings import Settings
from . import API_PREFIX

T = TypeVar("T")
logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 1


class CpuPool:
    """A process pool with a bounded line: `run` refuses when every place is taken.

    The executor is opened by the first job: a service that never gets one starts no process,
    not even multiprocessing's resource tracker, which a process pool starts with its queues."""

    def __init__(
        self, open_executor: Callable[[], Executor], workers: int, max_queued: int
    ) -> None:
        self.open_executor = open_executor
        self.executor: Executor | None = None
        self.places = max(workers, 1) + max_queued
        self.in_use = 0

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self.in_use >= self.places:
            raise HTTPException(
                503,
                "Too much CPU-heavy work is queued; try again later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if self.executor is None:
            self.executor = self.open_executor()
        self.in_use += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.in_use -= 1

    def shutdown(self) -> None:
        """Waits for the jobs already running (at most seconds), so every process exits cleanly."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


def ignore_stop_signals() -> None:
    """In each pool process: Ctrl-C and SIGTERM are for the service, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings: Settings = app.state.settings
    open_executor: Callable[[], Executor]
    if settings.cpu_workers:
        # spawn: a fresh interpreter per process, never a fork of this one's threads and loop.
        context = multiprocessing.get_context("spawn")
        open_executor = partial(
            ProcessPoolExecutor,
            settings.cpu_workers,
            mp_context=context,
            initializer=ignore_stop_signals,
        )
    else:
        open_executor = partial(ThreadPoolExecutor, 1, thread_name_prefix="cpu")
    pool = CpuPool(open_executor, settings.cpu_workers, settings.cpu_max_queued)
    try:
        yield {"cpu_pool": pool}
    finally:
        pool.shutdown()


async def get_cpu_pool(request: Request) -> CpuPool:
    pool: CpuPool = request.state.cpu_pool
    return pool


CpuPoolDep = Annotated[CpuPool, Depends(get_cpu_pool)]
N = Annotated[int, Path(ge=1, le=MAX_N, description="Which prime: 1 for 2, 2 for 3...")]
router = APIRouter(
    prefix=f"{API_PREFIX}/primes",
    route_class=RateLimitedRoute,
    tags=["primes"],
    lifespan=lifespan,
    responses=RATE_LIMITED,
)


class Prime(BaseModel):
    n: int
    prime: int


BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "The CPU pool's line is full; see Retry-After"}
}


def log_computed(n: int, seconds: float) -> None:
    logger.info("prime computed", extra={"n": n, "seconds": round(seconds, 3)})


@router.get("/{n}", responses=BUSY)
async def get_prime(n: N, pool: CpuPoolDep, background: BackgroundTasks) -> Prime:
    started = time.perf_counter()
    prime = await pool.run(nth_prime, n)
    background.add_task(log_computed, n, time.perf_counter() - started)  # after the response
    return Prime(n=n, prime=prime)
