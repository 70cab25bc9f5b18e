"""The application on one screen: its middleware stack, its routers and its lifespan.

Each router's own lifespan (opening a repository, an upstream client...) runs inside the app's,
and what it yields joins the request state that the routes' dependencies read.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from . import __version__, health
{%- set routers = [] %}
{%- if cookiecutter.include_examples %}{% set routers = routers + ["articles", "characters", "primes"] %}{% endif %}
{%- if cookiecutter.auth != "none" %}{% set routers = routers + ["me"] %}{% endif %}
{%- if cookiecutter.include_realtime %}{% set routers = routers + ["realtime"] %}{% endif %}
{%- if cookiecutter.auth == "jwt" %}{% set routers = routers + ["tokens"] %}{% endif %}
{%- if routers %}
from .api import {{ routers | join(", ") }}
{%- endif %}
{%- if cookiecutter.database != "none" %}
from .db import DATABASE_ERRORS, Database
{%- endif %}
from .errors import EXCEPTION_HANDLERS, PROBLEM_RESPONSES, problem_openapi
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database != "none" %}
from .messaging.broker import Broker
from .messaging.outbox import Relay
{%- elif cookiecutter.messaging == "rabbitmq" %}
from .messaging.broker import BrokerUnavailable
from .messaging.publisher import Publisher, broker_unavailable
{%- endif %}
from .health import HealthChecks{% if cookiecutter.database != "none" %}, register_check{% endif %}
from .observability.logging import setup_logging
from .observability.metrics import METRICS_PATH, metrics_auth, worker_metrics
from .observability.middleware import ObservabilityMiddleware
from .observability.request_id import RequestIdMiddleware
from .observability.tracing import NATIVE_TELEMETRY_OFF, Tracing
from .resilience import UpstreamError, upstream_error
{%- if cookiecutter.auth == "api_key" %}
from .security.api_keys import auth_state
{%- endif %}
from .security.cors import cors_middleware
from .security.docs import BUILT_IN_DOCS_OFF, docs_router
from .security.edge import EdgeMiddleware
from .security.rate_limit import RateLimits, default_rate_limit
{%- if cookiecutter.auth == "jwt" %}
from .security.tokens import auth_state
{%- endif %}
from .settings import Settings, get_settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings)
    tracing = Tracing(settings)
    rate_limits = RateLimits(settings)
{%- if cookiecutter.database != "none" %}
    database = Database(settings)
{%- endif %}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        logger.info(
            "starting", extra={"environment": settings.environment, "version": __version__}
        )
{%- if cookiecutter.database != "none" %}
        register_check(app, "database", database.ping)
        async with (
            tracing.running(),
            rate_limits.running(),
            worker_metrics(settings),
            database.running() as sessions,  # the pool, shared by this process's requests
{%- if cookiecutter.messaging == "rabbitmq" %}
            Relay(settings, sessions, Broker(settings)).running() as relay,  # the outbox's
{%- endif %}
        ):
{%- elif cookiecutter.messaging == "rabbitmq" %}
        async with (
            tracing.running(),
            rate_limits.running(),
            worker_metrics(settings),
            Publisher(settings).running() as publisher,  # events, after each write
        ):
{%- else %}
        async with tracing.running(), rate_limits.running(), worker_metrics(settings):
{%- endif %}
            # What start-up made lives as long as the app: keep it out of the collector's way.
            gc.freeze()
            yield {
                "rate_limits": rate_limits,
{%- if cookiecutter.database != "none" %}
                "sessions": sessions,  # db.SessionDep opens one per request
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database != "none" %}
                "relay": relay,  # messaging.outbox.EventsDep wakes it after each commit
{%- elif cookiecutter.messaging == "rabbitmq" %}
                "publisher": publisher,  # messaging.publisher.EventsDep
{%- endif %}
{%- if cookiecutter.auth != "none" %}
                **auth_state(settings),
{%- endif %}
            }
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
            Middleware(
                GZipMiddleware,
                minimum_size=settings.gzip_minimum_bytes,
                # Checked against every response: only what this API sends and must not
                # compress (an event stream would be held back). Add a type here if a
                # route serves already-compressed files (images, archives).
                exclude_content_types=("text/event-stream",),
            ),
        ],
        dependencies=[Depends(default_rate_limit)],  # RATE_LIMIT_DEFAULT on every route
{%- if cookiecutter.database != "none" %}
        exception_handlers={
            **EXCEPTION_HANDLERS,
            UpstreamError: upstream_error,
            **DATABASE_ERRORS,  # down, not migrated yet, or another database error
        },
{%- elif cookiecutter.messaging == "rabbitmq" %}
        exception_handlers={
            **EXCEPTION_HANDLERS,
            UpstreamError: upstream_error,
            BrokerUnavailable: broker_unavailable,
        },
{%- else %}
        exception_handlers={**EXCEPTION_HANDLERS, UpstreamError: upstream_error},
{%- endif %}
        responses=PROBLEM_RESPONSES,
        telemetry=NATIVE_TELEMETRY_OFF,  # the observability middleware traces
        **BUILT_IN_DOCS_OFF,  # docs_router serves them, under their own policy
    )
    app.state.settings = settings
    app.state.tracing = tracing  # its provider is the app's (tests add exporters to it)
    app.state.health_checks = HealthChecks(
        settings.readiness_timeout_seconds, settings.readiness_cache_seconds
    )
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.include_router(health.router)
    app.include_router(docs_router(settings))  # absent in production unless DOCS_IN_PRODUCTION
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
    # Add your routers here: each with prefix=f"{API_PREFIX}/<resource>" (api/__init__.py).
    Instrumentator().expose(
        app, endpoint=METRICS_PATH, include_in_schema=False, dependencies=metrics_auth(settings)
    )
    return app


app = create_app()
