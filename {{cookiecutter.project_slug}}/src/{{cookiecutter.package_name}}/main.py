"""The application factory: the one place where the service's parts meet."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import __version__
from .api.router import include_api
from .errors import PROBLEM_RESPONSES, install_error_handlers
from .health import install_health
from .observability.logging import setup_logging
from .observability.middleware import install_observability
from .observability.request_id import install_request_id
from .observability.tracing import NATIVE_TELEMETRY_OFF
from .resilience import install_resilience
from .security import install_security
from .security.docs import BUILT_IN_DOCS_OFF
from .security.rate_limit import install_rate_limiting
{%- if cookiecutter.auth == "api_key" %}
from .security.api_keys import install_api_keys
{%- elif cookiecutter.auth == "jwt" %}
from .security.tokens import install_tokens
{%- endif %}
from .settings import Settings, get_settings

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Startup, then shutdown. Features open their own resources in their routers' lifespans."""
    settings: Settings = app.state.settings
    logger.info("starting", extra={"environment": settings.environment, "version": __version__})
    yield
    logger.info("stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings)
    app = FastAPI(
        title=settings.service_name,
        version=__version__,
        debug=settings.debug,
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        **BUILT_IN_DOCS_OFF,
        telemetry=NATIVE_TELEMETRY_OFF,
    )
    app.state.settings = settings
    install_error_handlers(app)
    include_api(app)  # first: routes are tried in order, and the API is the hot path
    install_resilience(app)
    install_health(app, settings)
{%- if cookiecutter.auth == "api_key" %}
    install_api_keys(app, settings)
{%- elif cookiecutter.auth == "jwt" %}
    install_tokens(app, settings)
{%- endif %}
    # Middleware, innermost first: the last installed sees the request first.
    install_rate_limiting(app, settings)  # inside the edge, so a 429 gets its headers
    install_security(app, settings)  # Host check, body limit, security headers, CORS, gzip
    install_request_id(app)
    install_observability(app, settings)  # outermost: times, counts and logs every answer
    return app


app = create_app()
