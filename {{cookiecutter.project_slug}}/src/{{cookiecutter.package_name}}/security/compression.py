"""Response compression: Starlette's GZipMiddleware, unless a proxy in front compresses.

Behind the shipped nginx config (deploy/nginx), which compresses JSON itself, GZIP_ENABLED=false
leaves the middleware out of the stack: every request would otherwise pay for it, and the
proxy's CPU is cheaper than the service's.
"""

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from ..settings import Settings


def gzip_middleware(settings: Settings) -> list[Middleware]:
    """GZipMiddleware for complete bodies from GZIP_MINIMUM_BYTES up; none when disabled."""
    if not settings.gzip_enabled:
        return []
    return [
        Middleware(
            GZipMiddleware,
            minimum_size=settings.gzip_minimum_bytes,
            # zlib's own default: Starlette's 9 costs far more CPU for a few bytes less.
            compresslevel=6,
            # Checked against every response: only what this API sends and must not compress
            # (an event stream would be held back). Add a type here if a route serves
            # already-compressed files (images, archives).
            exclude_content_types=("text/event-stream",),
        )
    ]
