"""Health: /health/live says the process is up; /health/ready runs every registered
dependency check (concurrently, each with a timeout) and answers 200 or 503 with their states.
The answer is reused for READINESS_CACHE_SECONDS, and concurrent probes share one run: however
many callers ask, the dependencies are checked at most once per interval.

main.py creates the registry (`app.state.health_checks`); a feature registers its check in
its lifespan: `register_check(app, "redis", ping)`, where the check is an async callable that
raises when the dependency is not usable. Only a `NotReady` error shows its message there (what
is wrong and what fixes it); any other shows its type only.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel

# A check raises when its dependency is unusable; it may return a state to show ("closed").
Check = Callable[[], Awaitable[str | None]]
logger = logging.getLogger(__name__)
router = APIRouter(prefix="/health", tags=["health"])


class NotReady(Exception):
    """Raised by a check, with a message fit to show on /health/ready: no host, no secret."""


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    status: Literal["up", "down"]
    error: str | None = None
    state: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckResult]


class HealthChecks:
    def __init__(self, timeout: float, cache_seconds: float = 0.0) -> None:
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.checks: dict[str, Check] = {}
        self.latest: asyncio.Task[Readiness] | None = None
        self.latest_at = 0.0

    def register(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def readiness(self) -> Readiness:
        """The latest run's answer while it is fresh (or still running), else a new run."""
        now = time.monotonic()
        if self.latest is None or now - self.latest_at >= self.cache_seconds:
            self.latest, self.latest_at = asyncio.create_task(self.run()), now
        # Shielded: a caller that gives up does not cancel the run the others wait for.
        return await asyncio.shield(self.latest)

    async def run(self) -> Readiness:
        results = await asyncio.gather(*(self.run_one(c) for c in self.checks.values()))
        checks = dict(zip(self.checks, results))
        ready = all(result.status == "up" for result in results)
        return Readiness(status="ok" if ready else "unavailable", checks=checks)

    async def run_one(self, check: Check) -> CheckResult:
        try:
            state = await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return CheckResult(status="down", error=f"timed out after {self.timeout}s")
        except NotReady as exc:
            logger.warning("not ready: %s", exc)
            return CheckResult(status="down", error=str(exc))
        except Exception as exc:
            logger.warning("readiness check failed", exc_info=exc)
            # The type only: a message could carry hosts or credentials.
            return CheckResult(status="down", error=type(exc).__name__)
        return CheckResult(status="up", state=state)


async def get_health_checks(request: Request) -> HealthChecks:
    checks: HealthChecks = request.app.state.health_checks
    return checks


HealthChecksDep = Annotated[HealthChecks, Depends(get_health_checks)]


@router.get("/live")
async def live() -> Liveness:
    return Liveness()


@router.get("/ready", responses={503: {"model": Readiness, "description": "Not ready"}})
async def ready(checks: HealthChecksDep, response: Response) -> Readiness:
    readiness = await checks.readiness()
    if readiness.status != "ok":
        response.status_code = 503
    return readiness


def register_check(app: FastAPI, name: str, check: Check) -> None:
    app.state.health_checks.register(name, check)
