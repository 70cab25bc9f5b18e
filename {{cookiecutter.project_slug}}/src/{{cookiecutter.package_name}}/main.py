"""The application on one screen: its middleware stack, its routers and its lifespan.

Each router's own lifespan (opening a repository, an upstream client...) runs inside the app's,
and what it yields joins the request state that the routes' dependencies read.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.middleware import Middleware

from . import __version__, health
{%- set routers = [] %}
{%- if cookiecutter.include_examples %}{% set routers = routers + ["articles", "characters", "primes"] %}{% endif %}
{%- if cookiecutter.auth != "none" %}{% set routers = routers + ["me"] %}{% endif %}
{%- if cookiecutter.include_realtime %}{% set routers = routers + ["realtime"] %}{% endif %}
{%- if cookiecutter.auth == "jwt" %}{% set routers = routers + ["tokens"] %}{% endif %}
{%- if routers %}
from .api import {{ routers | join(", ") }}
{%- endif %}
from .contract import contract_openapi
from .errors import EXCEPTION_HANDLERS, PROBLEM_RESPONSES
from .health import HealthChecks
from .observability.error_tracking import error_tracking
from .observability.logging import setup_logging
from .observability.metrics import METRICS_PATH, metrics_auth, worker_metrics
from .observability.middleware import ObservabilityMiddleware
from .observability.request_id import RequestIdMiddleware
from .observability.tracing import NATIVE_TELEMETRY_OFF, Tracing
from .resilience import UpstreamError, upstream_error
from .resources import RESOURCE_ERRORS, open_resources
from .security.access import auth_state
from .security.compression import gzip_middleware
from .security.cors import cors_middleware
from .security.docs import BUILT_IN_DOCS_OFF, docs_router
from .security.edge import EdgeMiddleware
from .security.rate_limit import RateLimits
from .settings import Settings, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings)
    tracing = Tracing(settings)
    rate_limits = RateLimits(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        logger.info(
            "starting", extra={"environment": settings.environment, "version": __version__}
        )
        async with (
            error_tracking(settings),  # first: what fails after it is reported
            tracing.running(),
            rate_limits.running(),
            worker_metrics(settings),
            open_resources(app, settings) as resources,  # database, broker (resources.py)
        ):
            # What start-up made lives as long as the app: keep it out of the collector's way.
            gc.freeze()
            yield {"rate_limits": rate_limits, **resources, **auth_state(settings)}
        logger.info("stopped")

    app = FastAPI(
        title=settings.service_name,
        version=__version__,
        debug=settings.debug,
        lifespan=lifespan,
        middleware=[  # outermost first: the order a request crosses them
            Middleware(RequestIdMiddleware),  # the id current while the access line is logged
            Middleware(ObservabilityMiddleware, tracing=tracing, settings=settings),
            Middleware(EdgeMiddleware, settings=settings),  # Host, body size, security headers
            *cors_middleware(settings),  # only when CORS_ORIGINS lists origins
            *gzip_middleware(settings),  # unless GZIP_ENABLED=false (a proxy compresses)
        ],
        exception_handlers={
            **EXCEPTION_HANDLERS,
            UpstreamError: upstream_error,
            **RESOURCE_ERRORS,  # the database's or the broker's, as resources.py maps them
        },
        responses=PROBLEM_RESPONSES,
        telemetry=NATIVE_TELEMETRY_OFF,  # the observability middleware traces
        **BUILT_IN_DOCS_OFF,  # docs_router serves them, under their own policy
    )
    app.state.settings = settings
    app.state.tracing = tracing  # its provider is the app's (tests add exporters to it)
    app.state.health_checks = HealthChecks(
        settings.readiness_timeout_seconds, settings.readiness_cache_seconds
    )
    app.openapi = contract_openapi(app)  # type: ignore[method-assign]
    # The API's routers first: a request is matched against the routers in this order.
{%- if cookiecutter.include_examples %}
    app.include_router(articles.router)
    app.include_router(characters.router)
    app.include_router(primes.router)  # CPU-heavy work in a process pool
{%- endif %}
{%- if cookiecutter.include_realtime %}
    app.include_router(realtime.router)
{%- endif %}
{%- if cookiecutter.auth != "none" %}
    app.include_router(me.router)
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    app.include_router(tokens.router)
{%- endif %}
    # Add your routers here, each made as api/__init__.py shows (its prefix, its route class).
    app.include_router(health.router)
    app.include_router(docs_router(settings))  # absent in production unless DOCS_IN_PRODUCTION
    Instrumentator().expose(
        app, endpoint=METRICS_PATH, include_in_schema=False, dependencies=metrics_auth(settings)
    )
    return app


app = create_app()
