"""CORS from an explicit origin list (settings.cors_origins); off when the list is empty."""

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from ..settings import Settings


def cors_middleware(settings: Settings) -> list[Middleware]:
    """Starlette's CORSMiddleware for the configured origins; none without origins, so that
    a service no browser may call pays nothing for it."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    ]
